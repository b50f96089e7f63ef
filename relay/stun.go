package relay

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"weft.dev/weft/wire/stun"
)

// ServeSTUN answers STUN binding requests on pc until ctx is done or the
// server is closed; it then returns nil (pc is not closed). Requests that are
// not what tailscaled sends are ignored silently, as derper does. The loop
// does not allocate per request when pc is a *net.UDPConn.
func (s *Server) ServeSTUN(ctx context.Context, pc net.PacketConn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { pc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	go func() {
		select {
		case <-s.ctx.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	udp, _ := pc.(*net.UDPConn)
	buf := make([]byte, 1500)
	out := make([]byte, 0, 64)
	for {
		var (
			n    int
			from netip.AddrPort
			err  error
		)
		if udp != nil {
			n, from, err = udp.ReadFromUDPAddrPort(buf)
		} else {
			var a net.Addr
			n, a, err = pc.ReadFrom(buf)
			if ua, ok := a.(*net.UDPAddr); ok {
				from = ua.AddrPort()
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		tx, err := stun.ParseBindingRequest(buf[:n])
		if err != nil || !from.IsValid() {
			continue
		}
		s.m.stunRequests.Add(1)
		out = stun.AppendResponse(out[:0], tx, from)
		if udp != nil {
			udp.WriteToUDPAddrPort(out, from)
		} else {
			pc.WriteTo(out, net.UDPAddrFromAddrPort(from))
		}
	}
}
