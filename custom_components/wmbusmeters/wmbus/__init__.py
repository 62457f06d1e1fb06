"""Talk to the wmbusmeters program: configuration, probes, a supervised process.

Nothing in this package imports Home Assistant, so it can be tested and benchmarked alone.
"""

from .config import (
    LINK_MODES,
    InvalidDeviceError,
    InvalidDriverError,
    InvalidKeyError,
    InvalidLinkModeError,
    InvalidMeterIdError,
    MeterConfig,
    ReceiverConfig,
    WmbusConfigError,
    is_simulation,
    normalize_key,
    normalize_meter_id,
    render_config,
)
from .events import (
    DecryptionFailed,
    DecryptionProblem,
    DeviceNotFound,
    Message,
    RunnerEvent,
    RunnerState,
    RunnerStatus,
    Telegram,
)
from .probe import (
    CommandNotFoundError,
    DriverInfo,
    FieldInfo,
    NotExecutableError,
    NotWmbusmetersError,
    ProbeError,
    ProbeTimeoutError,
    list_fields,
    list_meters,
    probe_version,
)
from .runner import WmbusRunner

__all__ = [
    "LINK_MODES",
    "CommandNotFoundError",
    "DecryptionFailed",
    "DecryptionProblem",
    "DeviceNotFound",
    "DriverInfo",
    "FieldInfo",
    "InvalidDeviceError",
    "InvalidDriverError",
    "InvalidKeyError",
    "InvalidLinkModeError",
    "InvalidMeterIdError",
    "Message",
    "MeterConfig",
    "NotExecutableError",
    "NotWmbusmetersError",
    "ProbeError",
    "ProbeTimeoutError",
    "ReceiverConfig",
    "RunnerEvent",
    "RunnerState",
    "RunnerStatus",
    "Telegram",
    "WmbusConfigError",
    "WmbusRunner",
    "is_simulation",
    "list_fields",
    "list_meters",
    "normalize_key",
    "normalize_meter_id",
    "probe_version",
    "render_config",
]
