package relay

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"sync"

	"weft.dev/weft/wire/derp"
)

// metaCert returns the DER of the throw-away "meta certificate" that tells
// TLS 1.3 clients the DERP key so they can skip the 101 round trip (upstream
// derpserver.initMetacert): self-signed Ed25519, CN "derpkey<hex key>",
// serial = protocol version, valid ±30 days.
func (s *Server) metaCert() ([]byte, error) {
	s.metaOnce.Do(func() {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			s.metaErr = err
			return
		}
		k := s.pub.Raw32()
		now := s.now()
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(derp.ProtocolVersion),
			Subject:               pkix.Name{CommonName: "derpkey" + hex.EncodeToString(k[:])},
			NotBefore:             now.Add(-30 * 24 * 3600e9),
			NotAfter:              now.Add(30 * 24 * 3600e9),
			BasicConstraintsValid: true, // macOS clients need it
		}
		s.meta, s.metaErr = x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	})
	return s.meta, s.metaErr
}

// metaState holds the lazily built meta certificate.
type metaState struct {
	metaOnce sync.Once
	meta     []byte
	metaErr  error
}

// TLSConfig returns a copy of base that appends the meta certificate to
// every served chain, offers only HTTP/1.1 (DERP clients send no ALPN and
// must never be pushed to h2) and requires TLS 1.2 or later. base must set
// Certificates or GetCertificate.
func (s *Server) TLSConfig(base *tls.Config) (*tls.Config, error) {
	mc, err := s.metaCert()
	if err != nil {
		return nil, fmt.Errorf("relay: meta certificate: %w", err)
	}
	cfg := base.Clone()
	get := cfg.GetCertificate
	certs := cfg.Certificates
	cfg.Certificates = nil
	cfg.GetCertificate = func(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
		var c *tls.Certificate
		if get != nil {
			var err error
			if c, err = get(hi); err != nil || c == nil {
				return c, err
			}
		} else if len(certs) > 0 {
			c = &certs[0]
		} else {
			return nil, fmt.Errorf("relay: no certificate configured")
		}
		out := *c
		out.Certificate = append(append([][]byte(nil), c.Certificate...), mc)
		return &out, nil
	}
	if len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{"http/1.1"}
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg, nil
}
