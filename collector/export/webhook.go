package export

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
)

// Headers of a webhook request.
const (
	HeaderSignature = "X-Cordon-Signature"
	HeaderTimestamp = "X-Cordon-Timestamp"
	HeaderEvent     = "X-Cordon-Event"
	HeaderDelivery  = "X-Cordon-Delivery"
)

// webhook posts each event as a JSON body signed with HMAC-SHA256.
type webhook struct {
	cfg *SinkConfig
	cl  *http.Client
}

func newWebhook(c *SinkConfig) (*webhook, error) {
	cl, err := httpClient(c)
	if err != nil {
		return nil, err
	}
	return &webhook{cfg: c, cl: cl}, nil
}

// Sign returns the X-Cordon-Signature value of body sent at ts (Unix
// seconds): "sha256=" and the hex HMAC-SHA256, keyed with secret, of
// ts, ".", and body.
func Sign(secret string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (w *webhook) Send(ctx context.Context, ev *Event) error {
	b, err := body(w.cfg.Format, ev)
	if err != nil {
		return &PermanentError{err}
	}
	ts := unixNow().Unix()
	h := http.Header{}
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(HeaderSignature, Sign(w.cfg.Secret, ts, b))
	h.Set(HeaderEvent, ev.Kind)
	h.Set(HeaderDelivery, ev.ID)
	_, err = post(ctx, w.cl, w.cfg.URL, b, h)
	return err
}

func (w *webhook) Close() error {
	w.cl.CloseIdleConnections()
	return nil
}
