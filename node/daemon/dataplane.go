package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"

	"weft.dev/weft/node/engine"
	"weft.dev/weft/node/netmap"
	"weft.dev/weft/node/netstack"
	"weft.dev/weft/node/wgengine"
)

// EnvDERPOverHTTP is tailscaled's switch for dialing DERP over plain HTTP,
// needed only for relays started as `derper -dev`; weftd honours the same
// name.
const EnvDERPOverHTTP = "TS_DEBUG_USE_DERP_HTTP"

// newWGEngine is the default engine constructor: wireguard-go over
// magicsock with a kernel TUN, or netstack in userspace mode (where
// inbound TCP to the node's addresses is forwarded to the host's
// loopback, as tailscaled's netstack does for local services).
func newWGEngine(ec EngineConfig) (engine.Engine, error) {
	if ec.Port < 0 || ec.Port > 65535 {
		return nil, fmt.Errorf("--port=%d: want 0-65535", ec.Port)
	}
	userspace := ec.Tun == UserspaceNetworking
	opts := wgengine.Options{
		Logger:         ec.Logger,
		Port:           uint16(ec.Port),
		TUN:            ec.Tun,
		ForwardInbound: userspace,
		DERPOverHTTP:   ec.DERPOverHTTP,
	}
	e, err := wgengine.New(opts)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// netstacker is what a userspace engine offers the proxies.
type netstacker interface {
	Netstack() *netstack.Stack
}

// proxyDialer returns how the SOCKS5 and HTTP proxies dial: tailnet
// addresses (and peers' MagicDNS names) through netstack in userspace
// mode, everything else (and everything in TUN mode, where the kernel
// routes tailnet addresses into the TUN) through the host's network.
func (d *Daemon) proxyDialer() netstack.DialFunc {
	var st *netstack.Stack
	if ns, ok := d.eng.(netstacker); ok {
		st = ns.Netstack()
	}
	nmf := d.Backend.NetMap
	var host net.Dialer
	inTailnet := func(ip netip.Addr) bool {
		nm := nmf()
		return nm != nil && nm.PeerByIP(ip) != nil
	}
	var base netstack.DialFunc = host.DialContext
	if st != nil {
		base = st.Dialer(inTailnet)
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if h, p, err := net.SplitHostPort(addr); err == nil {
			if ip, ok := peerNameIP(nmf(), h); ok {
				addr = net.JoinHostPort(ip.String(), p)
			}
		}
		return base(ctx, network, addr)
	}
}

// peerNameIP resolves a peer's MagicDNS name (full or first label) from
// the netmap, preferring IPv4.
func peerNameIP(nm *netmap.NetworkMap, host string) (netip.Addr, bool) {
	if nm == nil || host == "" {
		return netip.Addr{}, false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return netip.Addr{}, false
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, p := range nm.Peers {
		name := strings.ToLower(strings.TrimSuffix(p.Name, "."))
		short, _, _ := strings.Cut(name, ".")
		if host != name && host != short {
			continue
		}
		var best netip.Addr
		for _, a := range p.Addresses {
			if !best.IsValid() || (a.Addr().Is4() && !best.Is4()) {
				best = a.Addr()
			}
		}
		return best, best.IsValid()
	}
	return netip.Addr{}, false
}

// proxies are the --socks5-server and --outbound-http-proxy-listen
// listeners, opened by New and served by Run.
type proxies struct {
	socks5, http net.Listener
}

func (p *proxies) listen(cfg Config) error {
	var err error
	if cfg.Socks5 != "" {
		if p.socks5, err = net.Listen("tcp", cfg.Socks5); err != nil {
			return fmt.Errorf("--socks5-server=%s: %w", cfg.Socks5, err)
		}
	}
	if cfg.HTTPProxy != "" {
		if p.http, err = net.Listen("tcp", cfg.HTTPProxy); err != nil {
			p.close()
			return fmt.Errorf("--outbound-http-proxy-listen=%s: %w", cfg.HTTPProxy, err)
		}
	}
	return nil
}

func (p *proxies) close() {
	for _, ln := range []net.Listener{p.socks5, p.http} {
		if ln != nil {
			ln.Close()
		}
	}
}

// serve runs the proxies until ctx ends; the returned wait blocks until
// they have stopped.
func (p *proxies) serve(ctx context.Context, dial netstack.DialFunc, log *slog.Logger) (wait func()) {
	var wg sync.WaitGroup
	if p.socks5 != nil {
		log.Info("SOCKS5 proxy listening", "addr", p.socks5.Addr())
		wg.Go(func() {
			if err := netstack.ServeSOCKS5(ctx, p.socks5, dial, log); err != nil {
				log.Error("SOCKS5 proxy", "err", err)
			}
		})
	}
	if p.http != nil {
		log.Info("HTTP proxy listening", "addr", p.http.Addr())
		wg.Go(func() {
			if err := netstack.ServeHTTPProxy(ctx, p.http, dial, log); err != nil {
				log.Error("HTTP proxy", "err", err)
			}
		})
	}
	return wg.Wait
}
