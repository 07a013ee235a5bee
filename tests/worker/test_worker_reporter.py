"""The worker's log stream: lines that are ready together travel as one message, in
order and complete, within bounds; a line on its own goes out on its own."""

from __future__ import annotations

import grpc
from support.fake_manager import FakeManager, serve_manager

from slipway.protocol import buildman_pb2 as pb
from slipway.protocol.buildman_pb2_grpc import BuildManagerStub
from slipway.worker.reporter import MESSAGE_BYTES, MESSAGE_LINES, Reporter, coalesce


def test_runs_of_output_lines_share_a_message_and_errors_keep_their_place() -> None:
    entries = [{"stream": "a\n"}, {"stream": "b\n"}, {"error": "boom"}, {"stream": "c\n"}]
    assert coalesce(entries) == [{"stream": "a\nb\n"}, {"error": "boom"}, {"stream": "c\n"}]
    assert entries[0] == {"stream": "a\n"}  # the queued entries are not changed


def test_a_message_holds_at_most_its_bounds() -> None:
    many = coalesce([{"stream": f"{i}\n"} for i in range(MESSAGE_LINES * 2 + 1)])
    assert [m["stream"].count("\n") for m in many] == [MESSAGE_LINES, MESSAGE_LINES, 1]
    wide = "x" * (MESSAGE_BYTES // 2 + 1) + "\n"
    assert len(coalesce([{"stream": wide}] * 3)) == 3


async def test_a_flood_of_output_arrives_whole_in_order_in_few_messages() -> None:
    manager = FakeManager(pb.BuildPack())
    async with serve_manager(manager) as address, grpc.aio.insecure_channel(address) as channel:
        reporter = Reporter(BuildManagerStub(channel), "job-token")
        await reporter.log("first on its own")
        await reporter.flush()
        lines = [f"line {i}" for i in range(1000)]
        for line in lines:
            await reporter.log(line)
        await reporter.log_error("it failed")
        await reporter.flush()
        await reporter.close()

    assert manager.rec.stream_lines() == ["first on its own", *lines]
    assert manager.rec.log_entries()[0] == {"stream": "first on its own\n"}
    assert manager.rec.log_entries()[-1] == {"error": "it failed"}
    # 1,000 lines queued at once: bounded messages, not one message per line
    assert len(manager.rec.logs) <= 1 + 1000 // MESSAGE_LINES + 2
    seqs = [m.sequence_number for m in manager.rec.logs]
    assert seqs == sorted(set(seqs))
