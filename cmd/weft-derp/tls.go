package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"golang.org/x/crypto/acme/autocert"

	"weft.dev/weft/relay"
)

// tlsSetup is the TLS side of the listener: the server config (with the
// DERP meta certificate) and the handler for the plain-HTTP port.
type tlsBundle struct {
	config *tls.Config
	acme   http.Handler // nil in manual mode
}

var unsafeHostChars = regexp.MustCompile(`[^a-zA-Z0-9-\.]`)

func tlsSetup(f *flags, srv *relay.Server, log *slog.Logger) (*tlsBundle, error) {
	if f.hostname == "" {
		return nil, errors.New("-hostname is required when serving TLS")
	}
	var base *tls.Config
	var acme http.Handler
	switch f.certMode {
	case "manual":
		cert, err := manualCert(f.certDir, f.hostname, log)
		if err != nil {
			return nil, err
		}
		base = &tls.Config{Certificates: []tls.Certificate{cert}}
	case "letsencrypt":
		m := &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			HostPolicy: autocert.HostWhitelist(f.hostname),
			Cache:      autocert.DirCache(f.certDir),
		}
		base = m.TLSConfig()
		// DERP clients send no ALPN; never negotiate h2 with anyone.
		base.NextProtos = slices.DeleteFunc(base.NextProtos, func(p string) bool { return p == "h2" })
		acme = m.HTTPHandler(nil)
	default:
		return nil, fmt.Errorf("unsupported -certmode %q (want manual or letsencrypt)", f.certMode)
	}
	cfg, err := srv.TLSConfig(base)
	if err != nil {
		return nil, err
	}
	return &tlsBundle{config: cfg, acme: acme}, nil
}

// port80 serves ACME HTTP-01, /generate_204, and redirects everything else
// to HTTPS, as derper does on -http-port.
func (t *tlsBundle) port80(hostname string) http.Handler {
	redirect := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "Use HTTPS", http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, "https://"+hostname+r.RequestURI, http.StatusFound)
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/generate_204", relay.ServeNoContent)
	if t.acme != nil {
		mux.Handle("/.well-known/acme-challenge/", t.acme)
	}
	mux.Handle("/", redirect)
	return mux
}

// manualCert loads <certdir>/<hostname>.crt/.key. For an IP hostname with
// no files it creates a self-signed certificate and logs the CertName to
// put in the DERP map (derper's behaviour).
func manualCert(dir, hostname string, log *slog.Logger) (tls.Certificate, error) {
	name := unsafeHostChars.ReplaceAllString(hostname, "")
	crt, keyPath := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	cert, err := tls.LoadX509KeyPair(crt, keyPath)
	ip := net.ParseIP(hostname)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) || ip == nil {
			return cert, fmt.Errorf("load certificate for %q from %s: %w", hostname, dir, err)
		}
		if cert, err = selfSignedIPCert(crt, keyPath, ip); err != nil {
			return cert, err
		}
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return cert, err
	}
	if err := leaf.VerifyHostname(hostname); err != nil {
		return cert, fmt.Errorf("certificate %s is not valid for %q: %w", crt, hostname, err)
	}
	if ip != nil {
		log.Info("self-signed IP certificate: set this CertName in the DERP map",
			"CertName", fmt.Sprintf("sha256-raw:%x", sha256.Sum256(leaf.Raw)))
	}
	return cert, nil
}

func selfSignedIPCert(crtPath, keyPath string, ip net.IP) (tls.Certificate, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: ip.String()},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IPAddresses:           []net.IP{ip},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return tls.Certificate{}, err
	}
	kb, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.MkdirAll(filepath.Dir(crtPath), 0o700); err != nil {
		return tls.Certificate{}, err
	}
	crtPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(crtPath, crtPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(crtPEM, keyPEM)
}
