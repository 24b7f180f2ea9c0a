package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"

	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol"
)

// TokenPrefix starts every enrollment token.
const TokenPrefix = "cdt_"

// Why Redeem refuses a token.
var (
	ErrTokenUnknown = errors.New("unknown enrollment token")
	ErrTokenExpired = errors.New("enrollment token expired")
	ErrTokenUsedUp  = errors.New("enrollment token used up")
)

// Token is an enrollment token as listed; the secret itself is shown only
// when it is created.
type Token struct {
	ID        string            `json:"id"`
	ExpiresAt time.Time         `json:"expires_at"`
	Uses      int               `json:"uses"`
	Used      int               `json:"used"`
	Tags      map[string]string `json:"tags"`
	CreatedAt time.Time         `json:"created_at"`
}

type tokenRecord struct {
	Token
	Hash string `json:"hash"`
}

// TokenRequest asks for a new enrollment token.
type TokenRequest struct {
	TTL  time.Duration
	Uses int
	Tags map[string]string
}

// Defaults and limits of a TokenRequest.
const (
	DefaultTokenTTL = 24 * time.Hour
	MaxTokenTTL     = 365 * 24 * time.Hour
)

func tokenKey(id string) []byte       { return store.Key("etoken", id) }
func tokenHashKey(hash string) []byte { return store.Key("etoken-hash", hash) }

// CreateToken stores a new enrollment token and returns it with its
// secret. A zero TTL means DefaultTokenTTL and zero uses one.
func (r *Registry) CreateToken(ctx context.Context, req TokenRequest) (*Token, string, error) {
	if req.TTL == 0 {
		req.TTL = DefaultTokenTTL
	}
	if req.TTL < 0 || req.TTL > MaxTokenTTL {
		return nil, "", store.Invalid("ttl", "must be positive and at most %s", MaxTokenTTL)
	}
	if req.Uses == 0 {
		req.Uses = 1
	}
	if req.Uses < 0 {
		return nil, "", store.Invalid("uses", "must be positive")
	}
	if err := CheckTags(req.Tags); err != nil {
		return nil, "", err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, "", fmt.Errorf("minting a token id: %w", err)
	}
	secret, hash := store.NewSecret(TokenPrefix)
	now := r.now().UTC()
	t := tokenRecord{
		Token: Token{
			ID: id.String(), ExpiresAt: now.Add(req.TTL), Uses: req.Uses,
			Tags: nonNilMap(maps.Clone(req.Tags)), CreatedAt: now,
		},
		Hash: hash,
	}
	err = store.Update(ctx, r.db, func(txn *badger.Txn) error {
		if err := store.Put(txn, tokenKey(t.ID), t); err != nil {
			return err
		}
		return txn.Set(tokenHashKey(hash), []byte(t.ID))
	})
	if err != nil {
		return nil, "", fmt.Errorf("storing an enrollment token: %w", err)
	}
	r.log.Info("enrollment token created", "token", t.ID, "uses", t.Uses, "expires", t.ExpiresAt)
	return &t.Token, secret, nil
}

// Tokens returns enrollment tokens newest first, and the cursor of the
// next page.
func (r *Registry) Tokens(ctx context.Context, p store.Page) ([]*Token, string, error) {
	var (
		items []*Token
		next  string
	)
	err := r.db.View(func(txn *badger.Txn) error {
		var err error
		items, next, err = store.Newest(txn, store.Prefix("etoken"), p, func(_, val []byte) (*Token, bool, error) {
			var t tokenRecord
			if err := store.Decode(val, &t); err != nil {
				return nil, false, err
			}
			return &t.Token, true, nil
		})
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("listing enrollment tokens: %w", err)
	}
	return items, next, nil
}

// Redeem implements the gateway's Enroller: in one transaction it checks
// the token, uses it once and stores the new agent with the certificate
// issue signed. A refused token (ErrTokenUnknown, ErrTokenExpired,
// ErrTokenUsedUp) or a failed issue stores nothing.
func (r *Registry) Redeem(ctx context.Context, token string, host *protocol.HostFacts, tags map[string]string,
	issue func(agentID string) (certDER []byte, notAfter time.Time, err error)) (string, []byte, error) {
	if err := CheckTags(tags); err != nil {
		return "", nil, fmt.Errorf("enrolling: %w", err)
	}
	u, err := uuid.NewV7()
	if err != nil {
		return "", nil, fmt.Errorf("enrolling: minting an agent id: %w", err)
	}
	agentID := u.String()
	var (
		cert    []byte
		tokenID string
	)
	r.redeemMu.Lock()
	defer r.redeemMu.Unlock()
	err = store.Update(ctx, r.db, func(txn *badger.Txn) error {
		t, err := r.usableToken(txn, token)
		if err != nil {
			return err
		}
		tokenID = t.ID
		if cert == nil {
			if cert, _, err = issue(agentID); err != nil {
				return fmt.Errorf("issuing the agent certificate: %w", err)
			}
		}
		t.Used++
		if err := store.Put(txn, tokenKey(t.ID), t); err != nil {
			return err
		}
		now := r.now().UTC()
		sum := sha256.Sum256(cert)
		a := &agentRecord{
			Agent: Agent{
				ID:          agentID,
				Tags:        merge(t.Tags, tags),
				SensorModes: []string{},
				EnrolledAt:  now,
			},
			CertSHA256: hex.EncodeToString(sum[:]),
		}
		setFacts(a, host)
		return store.Put(txn, agentKey(agentID), a)
	})
	if err != nil {
		return "", nil, fmt.Errorf("enrolling: %w", err)
	}
	r.log.Info("agent enrolled", "agent", agentID, "hostname", host.GetHostname(), "token", tokenID)
	return agentID, cert, nil
}

// usableToken returns the token a secret names if it may enroll one more
// agent.
func (r *Registry) usableToken(txn *badger.Txn, secret string) (*tokenRecord, error) {
	if !store.WellFormedSecret(TokenPrefix, secret) {
		return nil, ErrTokenUnknown
	}
	item, err := txn.Get(tokenHashKey(store.HashSecret(secret)))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrTokenUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("looking up the enrollment token: %w", err)
	}
	id, err := item.ValueCopy(nil)
	if err != nil {
		return nil, fmt.Errorf("looking up the enrollment token: %w", err)
	}
	var t tokenRecord
	if err := store.Get(txn, tokenKey(string(id)), &t); err != nil {
		return nil, fmt.Errorf("enrollment token %s: %w", id, err)
	}
	if !r.now().Before(t.ExpiresAt) {
		return nil, fmt.Errorf("token %s: %w", t.ID, ErrTokenExpired)
	}
	if t.Used >= t.Uses {
		return nil, fmt.Errorf("token %s: %w", t.ID, ErrTokenUsedUp)
	}
	return &t, nil
}

func merge(base, over map[string]string) map[string]string {
	m := make(map[string]string, len(base)+len(over))
	maps.Copy(m, base)
	maps.Copy(m, over)
	return m
}
