"""Constants of the wmbusmeters integration. Keys are fixed by CONTRACT.md."""

from typing import Final

DOMAIN: Final = "wmbusmeters"

# Receiver (config entry data)
CONF_COMMAND: Final = "command"
CONF_DEVICE: Final = "device"
#: What is on a serial device path: a dongle type (`im871a`) or `rawtty` (wmbus.DEVICE_TYPES).
CONF_DEVICE_TYPE: Final = "device_type"
CONF_LINK_MODES: Final = "link_modes"
#: RTL-SDR tuning (only with rtlwmbus or rtl433; absent otherwise): the stick's serial,
#: its frequency correction (ppm) and the frequency to listen on (MHz, None: wmbusmeters').
CONF_RTL_SERIAL: Final = "rtl_serial"
CONF_RTL_PPM: Final = "rtl_ppm"
CONF_RTL_FREQUENCY: Final = "rtl_frequency"
#: The receiver form's collapsed section holding them.
SECTION_RTL: Final = "rtl_sdr"

#: A network receiver (device `stdin`; its device_type is the line format, `rtlwmbus` or
#: `hex`): the address and port the integration listens on, TCP or UDP, and the sources
#: allowed to send (addresses or networks; empty: any).
CONF_LISTEN_HOST: Final = "listen_host"
CONF_LISTEN_PORT: Final = "listen_port"
CONF_LISTEN_PROTOCOL: Final = "listen_protocol"
CONF_ALLOWED_SOURCES: Final = "allowed_sources"
#: An MQTT receiver (device `stdin`, device_type the line format wmbusmeters reads): the topic
#: filter its gateways publish to, the payload format (`hex`, `json`, `rtlwmbus`) and, for
#: JSON, the field holding the frame.
CONF_MQTT_TOPIC: Final = "mqtt_topic"
CONF_PAYLOAD_FORMAT: Final = "payload_format"
CONF_FRAME_FIELD: Final = "frame_field"
DEFAULT_MQTT_TOPIC: Final = "wmbus/raw"
#: A wired M-Bus master (device_type `mbus`): the bus speed, 300, 2400 or 9600 bps.
CONF_BAUD_RATE: Final = "baud_rate"
DEFAULT_BAUD_RATE: Final = 2400

# Receiver options
CONF_SILENCE_TIMEOUT: Final = "silence_timeout"
DEFAULT_SILENCE_TIMEOUT: Final = 60  # minutes; 0 = off
#: Meters' dated registers go into their totals' long-term statistics (history.py).
CONF_IMPORT_HISTORY: Final = "import_history"
DEFAULT_IMPORT_HISTORY: Final = True

# Meters (config subentries)
SUBENTRY_METER: Final = "meter"
CONF_NAME: Final = "name"
CONF_DRIVER: Final = "driver"
CONF_METER_ID: Final = "meter_id"
CONF_KEY: Final = "key"
#: A wired meter (on an M-Bus receiver): seconds between polls, and its primary address
#: (0-250; absent: it is polled at its secondary address, the meter id).
CONF_POLL_INTERVAL: Final = "poll_interval"
CONF_PRIMARY_ADDRESS: Final = "primary_address"
DEFAULT_POLL_INTERVAL: Final = 60
#: Polls a wired meter may miss before it shows as unavailable.
MISSED_POLLS_BEFORE_UNAVAILABLE: Final = 3

EVENT_TELEGRAM: Final = "wmbusmeters_telegram"

SERVICE_RESTART: Final = "restart"
SERVICE_ANALYZE: Final = "analyze"
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"

#: Where each receiver's rendered wmbusmeters configuration lives, under HA's config dir.
CONFIG_SUBDIR: Final = ".wmbusmeters"

#: A battery meter may stay quiet for hours (nights, weekends): never call it lost sooner.
MIN_SILENCE_BEFORE_UNAVAILABLE: Final = 2 * 3600.0
