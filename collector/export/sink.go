package export

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// sender delivers one event to a receiver. An error means the event may
// not have arrived: the outbox sends it again later.
type sender interface {
	Send(ctx context.Context, ev *Event) error
	Close() error
}

// PermanentError is a refusal that no retry will change, such as a
// receiver rejecting the body; the outbox parks the event at once.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

func newSender(c *SinkConfig) (sender, error) {
	switch c.Type {
	case TypeWebhook:
		return newWebhook(c)
	case TypeSplunkHEC:
		return newHEC(c)
	case TypeTheHive:
		return newTheHive(c)
	case TypeSyslog:
		return newSyslog(c)
	case TypeFile:
		return newFile(c)
	}
	return nil, fmt.Errorf("unknown sink type %q", c.Type)
}

// body encodes ev in the sink's JSON format.
func body(format string, ev *Event) ([]byte, error) {
	var doc map[string]any
	switch format {
	case FormatECS:
		doc = ecsDoc(ev)
	default:
		doc = ocsf(ev)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encoding event %s: %w", ev.ID, err)
	}
	return b, nil
}

// tlsConfig returns the client TLS configuration of c: the CAs of
// c.CAFile, or the system's.
func tlsConfig(c *SinkConfig) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("sink %s: reading ca_file: %w", c.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("sink %s: ca_file %s holds no PEM certificate", c.Name, c.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

func httpClient(c *SinkConfig) (*http.Client, error) {
	tc, err := tlsConfig(c)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.Proxy = nil
	return &http.Client{
		Transport: tr,
		Timeout:   c.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}, nil
}

// post sends body to url and returns the response body of a 2xx answer.
// 4xx answers other than 408 and 429 are permanent errors.
func post(ctx context.Context, cl *http.Client, url string, body []byte, hdr http.Header) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, &PermanentError{fmt.Errorf("building the request: %w", err)}
	}
	req.Header = hdr
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cordon-collector")
	resp, err := cl.Do(req)
	if err != nil {
		return nil, fmt.Errorf("posting to %s: %w", redact(url), err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return rb, nil
	}
	err = &StatusError{Code: resp.StatusCode, Body: string(bytes.TrimSpace(rb[:min(len(rb), 512)]))}
	if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return rb, &PermanentError{err}
	}
	return rb, err
}

// StatusError is a non-2xx HTTP answer.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("receiver answered %d %s", e.Code, http.StatusText(e.Code))
	}
	return fmt.Sprintf("receiver answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Body)
}

// redact drops credentials from a URL for logs.
func redact(u string) string {
	for i := 0; i+3 <= len(u); i++ {
		if u[i:i+3] == "://" {
			rest := u[i+3:]
			if at := bytes.IndexByte([]byte(rest), '@'); at >= 0 {
				if sl := bytes.IndexByte([]byte(rest), '/'); sl < 0 || at < sl {
					return u[:i+3] + "…@" + rest[at+1:]
				}
			}
			break
		}
	}
	return u
}

var errClosed = errors.New("sink closed")

// unixNow is the clock of signatures and syslog headers; tests replace
// it.
var unixNow = time.Now
