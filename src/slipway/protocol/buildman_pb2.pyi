from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Phase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WAITING: _ClassVar[Phase]
    UNPACKING: _ClassVar[Phase]
    PULLING: _ClassVar[Phase]
    BUILDING: _ClassVar[Phase]
    PUSHING: _ClassVar[Phase]
    COMPLETE: _ClassVar[Phase]
    ERROR: _ClassVar[Phase]
WAITING: Phase
UNPACKING: Phase
PULLING: Phase
BUILDING: Phase
PUSHING: Phase
COMPLETE: Phase
ERROR: Phase

class PingRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PingReply(_message.Message):
    __slots__ = ("reply",)
    REPLY_FIELD_NUMBER: _ClassVar[int]
    reply: str
    def __init__(self, reply: _Optional[str] = ...) -> None: ...

class BuildJobArgs(_message.Message):
    __slots__ = ("register_jwt",)
    REGISTER_JWT_FIELD_NUMBER: _ClassVar[int]
    register_jwt: str
    def __init__(self, register_jwt: _Optional[str] = ...) -> None: ...

class BuildPack(_message.Message):
    __slots__ = ("job_jwt", "package_url", "git_package", "context", "dockerfile_path", "repository", "registry", "pull_token", "push_token", "tag_names", "base_image", "build_args", "target", "push_username", "push_password", "no_cache", "pull", "labels", "secrets", "platforms", "signing")
    class Signing(_message.Message):
        __slots__ = ("private_key", "passphrase", "required", "sbom", "build_arg_values", "builder_id", "build_id")
        PRIVATE_KEY_FIELD_NUMBER: _ClassVar[int]
        PASSPHRASE_FIELD_NUMBER: _ClassVar[int]
        REQUIRED_FIELD_NUMBER: _ClassVar[int]
        SBOM_FIELD_NUMBER: _ClassVar[int]
        BUILD_ARG_VALUES_FIELD_NUMBER: _ClassVar[int]
        BUILDER_ID_FIELD_NUMBER: _ClassVar[int]
        BUILD_ID_FIELD_NUMBER: _ClassVar[int]
        private_key: str
        passphrase: str
        required: bool
        sbom: bool
        build_arg_values: bool
        builder_id: str
        build_id: str
        def __init__(self, private_key: _Optional[str] = ..., passphrase: _Optional[str] = ..., required: _Optional[bool] = ..., sbom: _Optional[bool] = ..., build_arg_values: _Optional[bool] = ..., builder_id: _Optional[str] = ..., build_id: _Optional[str] = ...) -> None: ...
    class BaseImage(_message.Message):
        __slots__ = ("username", "password")
        USERNAME_FIELD_NUMBER: _ClassVar[int]
        PASSWORD_FIELD_NUMBER: _ClassVar[int]
        username: str
        password: str
        def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...
    class GitPackage(_message.Message):
        __slots__ = ("url", "sha", "private_key")
        URL_FIELD_NUMBER: _ClassVar[int]
        SHA_FIELD_NUMBER: _ClassVar[int]
        PRIVATE_KEY_FIELD_NUMBER: _ClassVar[int]
        url: str
        sha: str
        private_key: str
        def __init__(self, url: _Optional[str] = ..., sha: _Optional[str] = ..., private_key: _Optional[str] = ...) -> None: ...
    class BuildArg(_message.Message):
        __slots__ = ("name", "value")
        NAME_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        name: str
        value: str
        def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_JWT_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_URL_FIELD_NUMBER: _ClassVar[int]
    GIT_PACKAGE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    DOCKERFILE_PATH_FIELD_NUMBER: _ClassVar[int]
    REPOSITORY_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_FIELD_NUMBER: _ClassVar[int]
    PULL_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PUSH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TAG_NAMES_FIELD_NUMBER: _ClassVar[int]
    BASE_IMAGE_FIELD_NUMBER: _ClassVar[int]
    BUILD_ARGS_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PUSH_USERNAME_FIELD_NUMBER: _ClassVar[int]
    PUSH_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    NO_CACHE_FIELD_NUMBER: _ClassVar[int]
    PULL_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    PLATFORMS_FIELD_NUMBER: _ClassVar[int]
    SIGNING_FIELD_NUMBER: _ClassVar[int]
    job_jwt: str
    package_url: str
    git_package: BuildPack.GitPackage
    context: str
    dockerfile_path: str
    repository: str
    registry: str
    pull_token: str
    push_token: str
    tag_names: _containers.RepeatedScalarFieldContainer[str]
    base_image: BuildPack.BaseImage
    build_args: _containers.RepeatedCompositeFieldContainer[BuildPack.BuildArg]
    target: str
    push_username: str
    push_password: str
    no_cache: bool
    pull: bool
    labels: _containers.RepeatedCompositeFieldContainer[BuildPack.BuildArg]
    secrets: _containers.RepeatedCompositeFieldContainer[BuildPack.BuildArg]
    platforms: _containers.RepeatedScalarFieldContainer[str]
    signing: BuildPack.Signing
    def __init__(self, job_jwt: _Optional[str] = ..., package_url: _Optional[str] = ..., git_package: _Optional[_Union[BuildPack.GitPackage, _Mapping]] = ..., context: _Optional[str] = ..., dockerfile_path: _Optional[str] = ..., repository: _Optional[str] = ..., registry: _Optional[str] = ..., pull_token: _Optional[str] = ..., push_token: _Optional[str] = ..., tag_names: _Optional[_Iterable[str]] = ..., base_image: _Optional[_Union[BuildPack.BaseImage, _Mapping]] = ..., build_args: _Optional[_Iterable[_Union[BuildPack.BuildArg, _Mapping]]] = ..., target: _Optional[str] = ..., push_username: _Optional[str] = ..., push_password: _Optional[str] = ..., no_cache: _Optional[bool] = ..., pull: _Optional[bool] = ..., labels: _Optional[_Iterable[_Union[BuildPack.BuildArg, _Mapping]]] = ..., secrets: _Optional[_Iterable[_Union[BuildPack.BuildArg, _Mapping]]] = ..., platforms: _Optional[_Iterable[str]] = ..., signing: _Optional[_Union[BuildPack.Signing, _Mapping]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("job_jwt",)
    JOB_JWT_FIELD_NUMBER: _ClassVar[int]
    job_jwt: str
    def __init__(self, job_jwt: _Optional[str] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("reply",)
    REPLY_FIELD_NUMBER: _ClassVar[int]
    reply: bool
    def __init__(self, reply: _Optional[bool] = ...) -> None: ...

class SetPhaseRequest(_message.Message):
    __slots__ = ("job_jwt", "sequence_number", "phase", "pull_metadata", "image_digest", "error_message", "attestations")
    class PullMetadata(_message.Message):
        __slots__ = ("registry_url", "base_image", "base_image_tag", "pull_username")
        REGISTRY_URL_FIELD_NUMBER: _ClassVar[int]
        BASE_IMAGE_FIELD_NUMBER: _ClassVar[int]
        BASE_IMAGE_TAG_FIELD_NUMBER: _ClassVar[int]
        PULL_USERNAME_FIELD_NUMBER: _ClassVar[int]
        registry_url: str
        base_image: str
        base_image_tag: str
        pull_username: str
        def __init__(self, registry_url: _Optional[str] = ..., base_image: _Optional[str] = ..., base_image_tag: _Optional[str] = ..., pull_username: _Optional[str] = ...) -> None: ...
    JOB_JWT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    PULL_METADATA_FIELD_NUMBER: _ClassVar[int]
    IMAGE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ATTESTATIONS_FIELD_NUMBER: _ClassVar[int]
    job_jwt: str
    sequence_number: int
    phase: Phase
    pull_metadata: SetPhaseRequest.PullMetadata
    image_digest: str
    error_message: str
    attestations: str
    def __init__(self, job_jwt: _Optional[str] = ..., sequence_number: _Optional[int] = ..., phase: _Optional[_Union[Phase, str]] = ..., pull_metadata: _Optional[_Union[SetPhaseRequest.PullMetadata, _Mapping]] = ..., image_digest: _Optional[str] = ..., error_message: _Optional[str] = ..., attestations: _Optional[str] = ...) -> None: ...

class SetPhaseResponse(_message.Message):
    __slots__ = ("success", "sequence_number")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    success: bool
    sequence_number: int
    def __init__(self, success: _Optional[bool] = ..., sequence_number: _Optional[int] = ...) -> None: ...

class LogMessageRequest(_message.Message):
    __slots__ = ("job_jwt", "sequence_number", "log_message", "phase")
    JOB_JWT_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    LOG_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    job_jwt: str
    sequence_number: int
    log_message: str
    phase: str
    def __init__(self, job_jwt: _Optional[str] = ..., sequence_number: _Optional[int] = ..., log_message: _Optional[str] = ..., phase: _Optional[str] = ...) -> None: ...

class LogMessageResponse(_message.Message):
    __slots__ = ("success", "sequence_number")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    success: bool
    sequence_number: int
    def __init__(self, success: _Optional[bool] = ..., sequence_number: _Optional[int] = ...) -> None: ...

class CachedTagRequest(_message.Message):
    __slots__ = ("job_jwt", "base_image_name", "base_image_tag", "base_image_id")
    JOB_JWT_FIELD_NUMBER: _ClassVar[int]
    BASE_IMAGE_NAME_FIELD_NUMBER: _ClassVar[int]
    BASE_IMAGE_TAG_FIELD_NUMBER: _ClassVar[int]
    BASE_IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    job_jwt: str
    base_image_name: str
    base_image_tag: str
    base_image_id: str
    def __init__(self, job_jwt: _Optional[str] = ..., base_image_name: _Optional[str] = ..., base_image_tag: _Optional[str] = ..., base_image_id: _Optional[str] = ...) -> None: ...

class CachedTag(_message.Message):
    __slots__ = ("CachedTag",)
    CACHEDTAG_FIELD_NUMBER: _ClassVar[int]
    CachedTag: str
    def __init__(self, CachedTag: _Optional[str] = ...) -> None: ...
