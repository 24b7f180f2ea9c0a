package protocol

// ServerName is the name the collector's certificate is issued for and
// the name agents verify it against. Agents trust only the pinned CA, so
// the collector's network address never has to appear in a certificate.
const ServerName = "collector.cordon"

// Application error codes for closing QUIC connections and streams.
const (
	CodeOK       = 0x0 // normal close
	CodeFrame    = 0x1 // oversized, truncated or garbled frame
	CodeVersion  = 0x2 // unsupported protocol version
	CodeAuth     = 0x3 // enrollment refused, or a stream the peer may not open
	CodeProtocol = 0x4 // a frame that is valid but out of place
	CodeInternal = 0x5 // the peer failed to handle a valid frame
	CodeShutdown = 0x6 // the peer is shutting down or replaced this connection
)

// Error codes carried in Error frames.
const (
	ErrorFrame    = "frame"
	ErrorVersion  = "version"
	ErrorAuth     = "auth"
	ErrorProtocol = "protocol"
	ErrorInvalid  = "invalid"
	ErrorInternal = "internal"
)

// ErrorFrameOf returns a Frame carrying an Error.
func ErrorFrameOf(code, msg string) *Frame {
	return &Frame{Body: &Frame_Error{Error: &Error{Code: code, Message: msg}}}
}
