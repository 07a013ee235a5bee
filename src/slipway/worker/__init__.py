"""The build worker (`slipway worker`): registers with a manager over the buildman gRPC
protocol, fetches and safely unpacks the build context, builds and pushes with podman,
buildah or docker, and streams phases and logs back."""
