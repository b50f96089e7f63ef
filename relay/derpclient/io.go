package derpclient

import (
	"fmt"
	"time"

	"weft.dev/weft/wire/derp"
	"weft.dev/weft/wire/key"
)

// lockWriter takes the write lock; unlockWriter flushes if no other writer
// is waiting, so concurrent senders share syscalls instead of each paying a
// flush.
func (c *Client) lockWriter() {
	c.pending.Add(1)
	c.wmu.Lock()
}

func (c *Client) unlockWriter(err error) error {
	if c.pending.Add(-1) == 0 && err == nil {
		err = c.bw.Flush()
	}
	c.wmu.Unlock()
	return err
}

func (c *Client) writeFrame(ft derp.FrameType, payload []byte) error {
	c.lockWriter()
	return c.unlockWriter(derp.WriteFrame(c.bw, ft, payload))
}

// Send relays pkt to the client with public key dst. It does not allocate.
func (c *Client) Send(dst key.NodePublic, pkt []byte) error {
	if len(pkt) > derp.MaxPacketSize {
		return fmt.Errorf("derpclient: packet of %d bytes exceeds %d", len(pkt), derp.MaxPacketSize)
	}
	c.lockWriter()
	err := derp.WriteHeader(c.bw, derp.FrameSendPacket, uint32(derp.KeyLen+len(pkt)))
	if err == nil {
		err = derp.WriteKey(c.bw, dst)
	}
	if err == nil {
		_, err = c.bw.Write(pkt)
	}
	return c.unlockWriter(err)
}

// ForwardPacket sends a mesh ForwardPacket (src → dst); mesh peers only.
func (c *Client) ForwardPacket(src, dst key.NodePublic, pkt []byte) error {
	if len(pkt) > derp.MaxPacketSize {
		return fmt.Errorf("derpclient: packet of %d bytes exceeds %d", len(pkt), derp.MaxPacketSize)
	}
	c.lockWriter()
	err := derp.WriteHeader(c.bw, derp.FrameForwardPacket, uint32(2*derp.KeyLen+len(pkt)))
	if err == nil {
		err = derp.WriteKey(c.bw, src)
	}
	if err == nil {
		err = derp.WriteKey(c.bw, dst)
	}
	if err == nil {
		_, err = c.bw.Write(pkt)
	}
	return c.unlockWriter(err)
}

// WatchConns subscribes to PeerPresent/PeerGone updates (mesh peers only).
func (c *Client) WatchConns() error { return c.writeFrame(derp.FrameWatchConns, nil) }

// ClosePeer asks the server to close k's connections (mesh peers only).
func (c *Client) ClosePeer(k key.NodePublic) error {
	return c.writeFrame(derp.FrameClosePeer, derp.AppendKey(nil, k))
}

// NotePreferred tells the server whether it is this client's home relay.
func (c *Client) NotePreferred(home bool) error {
	b := byte(0)
	if home {
		b = 1
	}
	return c.writeFrame(derp.FrameNotePreferred, []byte{b})
}

// Ping sends a Ping; the server answers with a Pong carrying data.
func (c *Client) Ping(data [derp.PingLen]byte) error { return c.writeFrame(derp.FramePing, data[:]) }

// Pong answers a server Ping.
func (c *Client) Pong(data [derp.PingLen]byte) error { return c.writeFrame(derp.FramePong, data[:]) }

// Message is one frame received from the server. Which fields are set
// depends on Type.
type Message struct {
	Type derp.FrameType
	// RecvPacket: the sender and the packet. Packet is only valid until
	// the next Recv.
	Source key.NodePublic
	Packet []byte
	// PeerGone: the peer and the reason.
	Peer   key.NodePublic
	Reason derp.PeerGoneReason
	// PeerPresent.
	Present derp.PeerPresent
	// Ping/Pong data.
	PingData [derp.PingLen]byte
	// Health problem text (empty clears it).
	Health string
	// Restarting hints.
	ReconnectIn, TryFor time.Duration
	// Raw is the payload of frames not decoded above; valid until the next Recv.
	Raw []byte
}

// Recv reads the next frame. Server Pings are answered automatically (and
// still returned). Malformed known frames are an error.
func (c *Client) Recv() (Message, error) {
	ft, p, err := derp.ReadFrame(c.br, derp.MaxFrameLen, c.rbuf)
	if err != nil {
		return Message{}, err
	}
	if cap(p) > cap(c.rbuf) {
		c.rbuf = p[:0]
	}
	m := Message{Type: ft}
	switch ft {
	case derp.FrameRecvPacket:
		m.Source, m.Packet, err = derp.ParseRecvPacket(p)
	case derp.FramePeerGone:
		m.Peer, m.Reason, err = derp.ParsePeerGone(p)
	case derp.FramePeerPresent:
		m.Present, err = derp.ParsePeerPresent(p)
	case derp.FramePing, derp.FramePong:
		if len(p) < derp.PingLen {
			return m, fmt.Errorf("derpclient: short %v", ft)
		}
		m.PingData = [derp.PingLen]byte(p)
		if ft == derp.FramePing {
			err = c.Pong(m.PingData)
		}
	case derp.FrameHealth:
		m.Health = string(p)
	case derp.FrameRestarting:
		m.ReconnectIn, m.TryFor, err = derp.ParseRestarting(p)
	default:
		m.Raw = p
	}
	return m, err
}
