package protocol

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
)

// MaxFrameSize is the hard limit on one frame's payload. A batch of
// findings is sized to stay well below it; anything larger is refused
// before a byte of it is allocated.
const MaxFrameSize = 4 << 20

// ErrFrameTooLarge is returned for a frame whose declared length exceeds
// the reader's limit.
var ErrFrameTooLarge = errors.New("frame too large")

// ErrMalformedFrame wraps a payload that is not a valid Frame message.
var ErrMalformedFrame = errors.New("malformed frame")

// A frame on the wire is a 4-byte big-endian payload length followed by
// the protobuf encoding of a Frame.
const headerLen = 4

// readBuffer is the FrameReader's buffer: enough for the header and a
// small frame such as a heartbeat in one read, while a large frame is
// read straight into its own buffer. A collector holds one reader per
// agent for as long as it is connected, so this is kept well under
// bufio's 4 KiB default.
const readBuffer = 512

// keepBuffer is the largest frame buffer a FrameReader keeps for the
// next frame; larger ones are allocated per frame.
const keepBuffer = 64 << 10

// FrameReader reads frames from a stream.
type FrameReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

// NewFrameReader returns a reader that refuses frames above max bytes
// (MaxFrameSize when max <= 0).
func NewFrameReader(r io.Reader, max int) *FrameReader {
	if max <= 0 || max > MaxFrameSize {
		max = MaxFrameSize
	}
	return &FrameReader{r: bufio.NewReaderSize(r, readBuffer), max: max}
}

// Read reads the next frame. It returns io.EOF at a clean end of stream
// (no partial header), io.ErrUnexpectedEOF for a truncated frame,
// ErrFrameTooLarge and ErrMalformedFrame (wrapped) for bad input.
func (fr *FrameReader) Read() (*Frame, error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(fr.r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("reading frame header: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > uint32(fr.max) {
		return nil, fmt.Errorf("%w: %d bytes declared, limit %d", ErrFrameTooLarge, n, fr.max)
	}
	if cap(fr.buf) < int(n) {
		fr.buf = make([]byte, n)
	}
	buf := fr.buf[:n]
	if _, err := io.ReadFull(fr.r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("reading %d-byte frame: %w", n, err)
	}
	if cap(fr.buf) > keepBuffer {
		// A large frame's buffer is not kept for the life of the
		// stream: a collector reads one findings stream per connected
		// agent, and a backlog's 1 MiB batches are the exception.
		fr.buf = nil
	}
	f := new(Frame)
	if err := proto.Unmarshal(buf, f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedFrame, err)
	}
	if f.Body == nil {
		return nil, fmt.Errorf("%w: empty body", ErrMalformedFrame)
	}
	return f, nil
}

// AppendFrame appends the wire encoding of f to b.
func AppendFrame(b []byte, f *Frame) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b, err := proto.MarshalOptions{}.MarshalAppend(b, f)
	if err != nil {
		return b[:start], fmt.Errorf("encoding frame: %w", err)
	}
	n := len(b) - start - headerLen
	if n > MaxFrameSize {
		return b[:start], fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, MaxFrameSize)
	}
	binary.BigEndian.PutUint32(b[start:], uint32(n))
	return b, nil
}

// WriteFrame writes f to w as one frame.
func WriteFrame(w io.Writer, f *Frame) error {
	b, err := AppendFrame(nil, f)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("writing frame: %w", err)
	}
	return nil
}

// DeadlineWriter is a stream that takes write deadlines, as QUIC streams do.
type DeadlineWriter interface {
	io.Writer
	SetWriteDeadline(time.Time) error
}

// FrameWriter writes whole frames to one stream from several goroutines,
// each write bounded by a timeout so a stalled peer cannot block forever.
type FrameWriter struct {
	mu      sync.Mutex
	w       DeadlineWriter
	timeout time.Duration
	buf     []byte
}

// NewFrameWriter returns a FrameWriter; timeout <= 0 means 30 seconds.
func NewFrameWriter(w DeadlineWriter, timeout time.Duration) *FrameWriter {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &FrameWriter{w: w, timeout: timeout}
}

// Write writes f as one frame.
func (fw *FrameWriter) Write(f *Frame) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	b, err := AppendFrame(fw.buf[:0], f)
	if err != nil {
		return err
	}
	fw.buf = b
	if err := fw.w.SetWriteDeadline(time.Now().Add(fw.timeout)); err != nil {
		return fmt.Errorf("setting write deadline: %w", err)
	}
	if _, err := fw.w.Write(b); err != nil {
		return fmt.Errorf("writing frame: %w", err)
	}
	return nil
}
