"""Suit <-> gateway GATT transfer protocol, version 2 (docs/ble-protocol.md).

The suit exposes one custom service with three characteristics:

* **status** (read, notify): battery, charging flag, stored logs, version;
* **control point** (write with response, indicate): commands LIST_LOGS,
  READ_LOG, ACK, NACK, RELEASE_LOG, ABORT, ENROLL; replies and the
  STREAM_END event come back as segmented indications;
* **data** (notify): the chunks of the log being read, each with a 16-bit
  sequence number, its log offset and a CRC-16.

Flow control is a sliding window: after READ_LOG the suit streams chunks
back-to-back while fewer than ``window_chunks`` are unacknowledged; the
gateway's cumulative ACKs open the window, its NACKs re-request chunks it
found missing (a gap in sequence numbers, or a bad CRC).

Version 2 adds bonding: ENROLL (on a freshly paired link, in pairing mode)
gives both sides a release key, and RELEASE_LOG may carry a receipt signed
with it (:mod:`.receipts`).

Errors (all parsers raise only these, whatever bytes they get)::

    ProtocolError
     +-- MalformedMessageError
     |    +-- UnknownOpcodeError
     +-- ChecksumError
     +-- SegmentationError
"""

from firmware_bridge.ble.protocol.chunks import (
    DataChunk,
    crc16,
    decode_chunk,
    encode_chunk,
    unwrap_seq,
)
from firmware_bridge.ble.protocol.commands import (
    Abort,
    Ack,
    Command,
    Enroll,
    ListLogs,
    Nack,
    ReadLog,
    ReleaseLog,
    decode_command,
)
from firmware_bridge.ble.protocol.constants import (
    ATT_APP_ERROR_BASE,
    ATT_MIN_MTU,
    CHUNK_OVERHEAD_BYTES,
    CONTROL_POINT_UUID,
    DATA_UUID,
    DIS_SERIAL_NUMBER_UUID,
    DIS_SERVICE_UUID,
    MAX_LIST_ENTRIES,
    MAX_LOG_BYTES,
    MAX_WINDOW_CHUNKS,
    NONCE_BYTES,
    PROTOCOL_VERSION,
    SERVICE_UUID,
    STATUS_UUID,
    Opcode,
    ResultCode,
    chunk_payload_for_mtu,
)
from firmware_bridge.ble.protocol.errors import (
    ChecksumError,
    MalformedMessageError,
    ProtocolError,
    SegmentationError,
    UnknownOpcodeError,
)
from firmware_bridge.ble.protocol.fields import normalize_log_id, normalize_sha256
from firmware_bridge.ble.protocol.receipts import (
    RECEIPT_BYTES,
    ReleaseReceipt,
    derive_release_key,
    receipt_mac,
    upload_digest,
)
from firmware_bridge.ble.protocol.replies import (
    AbortReply,
    EnrollReply,
    ErrorReply,
    ListLogsReply,
    LogEntryRecord,
    ReadLogReply,
    ReleaseLogReply,
    Reply,
    StreamEnd,
    decode_reply,
)
from firmware_bridge.ble.protocol.segments import ReplyReassembler, segment_message
from firmware_bridge.ble.protocol.status import StatusRecord

__all__ = [
    "ATT_APP_ERROR_BASE",
    "ATT_MIN_MTU",
    "CHUNK_OVERHEAD_BYTES",
    "CONTROL_POINT_UUID",
    "DATA_UUID",
    "DIS_SERIAL_NUMBER_UUID",
    "DIS_SERVICE_UUID",
    "MAX_LIST_ENTRIES",
    "MAX_LOG_BYTES",
    "MAX_WINDOW_CHUNKS",
    "NONCE_BYTES",
    "PROTOCOL_VERSION",
    "RECEIPT_BYTES",
    "SERVICE_UUID",
    "STATUS_UUID",
    "Abort",
    "AbortReply",
    "Ack",
    "ChecksumError",
    "Command",
    "DataChunk",
    "Enroll",
    "EnrollReply",
    "ErrorReply",
    "ListLogs",
    "ListLogsReply",
    "LogEntryRecord",
    "MalformedMessageError",
    "Nack",
    "Opcode",
    "ProtocolError",
    "ReadLog",
    "ReadLogReply",
    "ReleaseLog",
    "ReleaseLogReply",
    "ReleaseReceipt",
    "Reply",
    "ReplyReassembler",
    "ResultCode",
    "SegmentationError",
    "StatusRecord",
    "StreamEnd",
    "UnknownOpcodeError",
    "chunk_payload_for_mtu",
    "crc16",
    "decode_chunk",
    "decode_command",
    "decode_reply",
    "derive_release_key",
    "encode_chunk",
    "normalize_log_id",
    "normalize_sha256",
    "receipt_mac",
    "segment_message",
    "unwrap_seq",
    "upload_digest",
]
