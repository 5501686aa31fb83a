//! ringraft local-socket protocol: messages, framing, status codes
