package noise

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"weft.dev/weft/wire/key"
)

// ClientConfig holds what a client handshake needs.
type ClientConfig struct {
	// MachineKey is the client's static key; the server learns its public half.
	MachineKey key.MachinePrivate
	// ServerKey is the server's Noise key, from GET /key ("publicKey").
	ServerKey key.MachinePublic
	// ProtocolVersion is the client's capability version (142 for Tailscale 1.102).
	ProtocolVersion uint16
}

// ClientInit is a client handshake whose initiation is built and whose
// response has not been read yet. The split exists because over HTTP the
// initiation travels in a request header, not on the byte stream.
type ClientInit struct {
	cfg   ClientConfig
	s     symmetricState // state after the initiation
	ePriv [32]byte
	msg   [initiationLen]byte
}

// StartClient builds the 101-byte initiation for cfg.
func StartClient(cfg ClientConfig) (*ClientInit, error) { return startClient(cfg, rand.Reader) }

// startClient is StartClient with the ephemeral key drawn from rnd, so fuzz
// targets can replay a handshake exactly.
func startClient(cfg ClientConfig, rnd io.Reader) (*ClientInit, error) {
	if cfg.MachineKey.IsZero() {
		return nil, errors.New("noise: client machine key is zero")
	}
	if cfg.ServerKey.IsZero() {
		return nil, errors.New("noise: server key is zero; fetch it with GetServerKey")
	}
	ePriv, ePub, err := newEphemeral(rnd)
	if err != nil {
		return nil, err
	}
	serverPub := cfg.ServerKey.Raw32()
	machinePub := cfg.MachineKey.Public().Raw32()

	ci := &ClientInit{cfg: cfg, ePriv: ePriv}
	s := newSymmetricState(cfg.ProtocolVersion, serverPub)

	msg := ci.msg[:0]
	msg = binary.BigEndian.AppendUint16(msg, cfg.ProtocolVersion)
	msg = append(msg, msgTypeInitiation)
	msg = binary.BigEndian.AppendUint16(msg, initiationPayloadLen)
	msg = append(msg, ePub[:]...)
	s.mixHash(ePub[:])

	aead, err := s.mixDH(ePriv, serverPub) // es
	if err != nil {
		return nil, fmt.Errorf("noise: server key: %w", err)
	}
	msg = s.encryptAndHash(aead, msg, machinePub[:])
	aead, err = s.mixDH(cfg.MachineKey.Raw32(), serverPub) // ss
	if err != nil {
		return nil, fmt.Errorf("noise: server key: %w", err)
	}
	msg = s.encryptAndHash(aead, msg, nil)
	if len(msg) != initiationLen {
		panic("noise: initiation length mismatch") // a bug in this file, not input
	}
	ci.s = *s
	return ci, nil
}

// Initiation returns a copy of the initiation message.
func (ci *ClientInit) Initiation() []byte {
	b := ci.msg
	return b[:]
}

// Finish reads the server's response (or error message) from conn and returns
// the transport connection. The caller bounds it with conn deadlines.
func (ci *ClientInit) Finish(conn net.Conn) (*Conn, error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return nil, fmt.Errorf("noise: read handshake response: %w", err)
	}
	n := int(binary.BigEndian.Uint16(hdr[1:]))
	switch hdr[0] {
	case msgTypeError:
		text := make([]byte, n) // n < 64 KiB by construction
		if _, err := io.ReadFull(conn, text); err != nil {
			return nil, fmt.Errorf("noise: read server error message: %w", err)
		}
		return nil, &ServerError{Text: string(text)}
	case msgTypeResponse:
		if n != responsePayloadLen {
			return nil, fmt.Errorf("noise: handshake response announces %d bytes, want %d", n, responsePayloadLen)
		}
	default:
		return nil, fmt.Errorf("noise: handshake response has message type 0x%02x, want 0x%02x", hdr[0], msgTypeResponse)
	}
	var body [responsePayloadLen]byte
	if _, err := io.ReadFull(conn, body[:]); err != nil {
		return nil, fmt.Errorf("noise: read handshake response: %w", err)
	}

	s := ci.s // Finish must not change ci, so a retry starts from the same state
	var rePub [32]byte
	copy(rePub[:], body[:keyLen])
	s.mixHash(rePub[:])
	if _, err := s.mixDH(ci.ePriv, rePub); err != nil { // ee
		return nil, fmt.Errorf("noise: server ephemeral key: %w", err)
	}
	aead, err := s.mixDH(ci.cfg.MachineKey.Raw32(), rePub) // se
	if err != nil {
		return nil, fmt.Errorf("noise: server ephemeral key: %w", err)
	}
	if _, err := s.decryptAndHash(aead, body[keyLen:]); err != nil {
		return nil, fmt.Errorf("noise: handshake response does not authenticate (wrong server key?): %w", err)
	}
	c2s, s2c := s.split()
	return newConn(conn, ci.cfg.ProtocolVersion, ci.cfg.ServerKey, s.h, c2s, s2c)
}

// ClientHandshake runs the whole client handshake on conn: it writes the
// initiation to the stream itself (as upstream controlbase.Client does) and
// reads the response. ctx bounds the handshake. It does not look for an
// early payload; Dial does.
func ClientHandshake(ctx context.Context, conn net.Conn, cfg ClientConfig) (*Conn, error) {
	ci, err := StartClient(cfg)
	if err != nil {
		return nil, err
	}
	stop := bindContext(ctx, conn)
	c, err := func() (*Conn, error) {
		if _, err := conn.Write(ci.msg[:]); err != nil {
			return nil, fmt.Errorf("noise: write initiation: %w", err)
		}
		return ci.Finish(conn)
	}()
	if serr := stop(); err == nil && serr != nil {
		err = serr
	}
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	return c, nil
}

// ServerConfig configures the server side.
type ServerConfig struct {
	// PrivateKey is the server's Noise key; its public half is served by GET /key.
	PrivateKey key.MachinePrivate
	// MinVersion rejects clients whose protocol (capability) version is lower,
	// with an error message the client shows. Zero accepts all.
	MinVersion uint16
	// EarlyPayload sends the node-key challenge before any other data
	// (control.md §2.6). Ignored on the WebSocket path, as upstream does.
	EarlyPayload bool
}

// ServerHandshake runs the server side on conn. initMsg is the 101-byte
// initiation when it arrived out of band (the HTTP header); if nil, it is read
// from conn. On a rejected or failed handshake the client is sent an error
// message; conn is left open either way and belongs to the caller.
func ServerHandshake(conn net.Conn, initMsg []byte, cfg ServerConfig) (*Conn, error) {
	if initMsg == nil {
		initMsg = make([]byte, initiationLen)
		if _, err := io.ReadFull(conn, initMsg); err != nil {
			return nil, fmt.Errorf("noise: read initiation: %w", err)
		}
	}
	init, err := parseInitiation(initMsg)
	if err != nil {
		conn.Write(appendErrorMessage(nil, "malformed handshake initiation"))
		return nil, err
	}
	c, reply, err := serverAccept(conn, init, cfg, cfg.EarlyPayload, rand.Reader)
	if _, werr := conn.Write(reply); werr != nil && err == nil {
		err = fmt.Errorf("noise: write handshake response: %w", werr)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// serverAccept is the responder's computation, without I/O. It returns the
// bytes to send: the response (followed, with early, by the early payload
// records) on success, or an error message and a non-nil error on rejection.
// The ephemeral key is drawn from rnd.
func serverAccept(conn net.Conn, init *initiation, cfg ServerConfig, early bool, rnd io.Reader) (*Conn, []byte, error) {
	reject := func(hint string, err error) (*Conn, []byte, error) {
		return nil, appendErrorMessage(nil, hint), err
	}
	if cfg.PrivateKey.IsZero() {
		return reject("server misconfigured", errors.New("noise: ServerConfig.PrivateKey is zero"))
	}
	v := init.version()
	if v < cfg.MinVersion {
		return reject(fmt.Sprintf("client too old: capability version %d < %d; upgrade Tailscale", v, cfg.MinVersion),
			fmt.Errorf("noise: client capability version %d below minimum %d", v, cfg.MinVersion))
	}

	serverPriv := cfg.PrivateKey.Raw32()
	s := newSymmetricState(v, cfg.PrivateKey.Public().Raw32())
	var cePub [32]byte
	copy(cePub[:], init.ephemeral())
	s.mixHash(cePub[:])

	const hint = "noise handshake failed; the client may have a stale server key (re-fetch /key)"
	aead, err := s.mixDH(serverPriv, cePub) // es
	if err != nil {
		return reject(hint, fmt.Errorf("noise: client ephemeral key: %w", err))
	}
	machine, err := s.decryptAndHash(aead, init.machineCiphertext())
	if err != nil {
		return reject(hint, fmt.Errorf("noise: decrypt client machine key: %w", err))
	}
	var machinePub [32]byte
	copy(machinePub[:], machine)
	aead, err = s.mixDH(serverPriv, machinePub) // ss
	if err != nil {
		return reject(hint, fmt.Errorf("noise: client machine key: %w", err))
	}
	if _, err := s.decryptAndHash(aead, init.tag()); err != nil {
		return reject(hint, fmt.Errorf("noise: initiation does not authenticate: %w", err))
	}

	ePriv, ePub, err := newEphemeral(rnd)
	if err != nil {
		return reject("server error", err)
	}
	out := make([]byte, 0, responseLen)
	out = append(out, msgTypeResponse, 0, responsePayloadLen)
	out = append(out, ePub[:]...)
	s.mixHash(ePub[:])
	if _, err := s.mixDH(ePriv, cePub); err != nil { // ee
		return reject(hint, fmt.Errorf("noise: client ephemeral key: %w", err))
	}
	aead, err = s.mixDH(ePriv, machinePub) // se
	if err != nil {
		return reject(hint, fmt.Errorf("noise: client machine key: %w", err))
	}
	out = s.encryptAndHash(aead, out, nil)

	c2s, s2c := s.split()
	c, err := newConn(conn, v, key.MachinePublicFromRaw32(machinePub), s.h, s2c, c2s)
	if err != nil {
		return reject("server error", err)
	}
	if early {
		if out, err = c.appendEarlyPayload(out); err != nil {
			return reject("server error", err)
		}
	}
	return c, out, nil
}
