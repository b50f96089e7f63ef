package controlclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"weft.dev/weft/node/engine"
	"weft.dev/weft/node/netmap"
	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

// CapVersion is the capability version weftd declares. It is the version
// whose semantics this package implements (upstream 1.102's 142): ≥ 113,
// so headscale accepts it.
const CapVersion = ctrl.CurrentCapabilityVersion

// Defaults of Options.
const (
	DefaultStreamWatchdog = 120 * time.Second
	DefaultMaxBackoff     = 30 * time.Second
)

// logoutExpiry is the Expiry a logout sends: Unix 123, as upstream.
var logoutExpiry = time.Unix(123, 0).UTC()

// Persist is the per-profile login state the caller must store.
type Persist struct {
	// PrivateNodeKey is the node key; zero when logged out.
	PrivateNodeKey key.NodePrivate
	// OldPrivateNodeKey is the key being rotated away from, if any.
	OldPrivateNodeKey key.NodePrivate
	// UserProfile is the login from the last successful register.
	UserProfile ctrl.UserProfile
}

// Status is a report from Auto to its Observer. Only the fields that
// changed are set.
type Status struct {
	// AuthURL is where the user must go to finish an interactive login.
	AuthURL string
	// LoginFinished is set when a register succeeded.
	LoginFinished bool
	// Persist is set when the login state changed; store it.
	Persist *Persist
	// NetMap is a new network map.
	NetMap *netmap.NetworkMap
	// Health is control's list of health messages, when it changed.
	Health []string
	// Err is the latest failure. With LoginFailed, login stopped and waits
	// for a new Login call; otherwise Auto retries by itself.
	Err         error
	LoginFailed bool
	// LoggedOut is set after Logout.
	LoggedOut bool
	// PopBrowserURL is a URL control asks the user to open.
	PopBrowserURL string
}

// Observer receives Auto's reports, in order, from Auto's goroutine. It
// must not block for long; it may call Auto's methods.
type Observer interface {
	SetControlClientStatus(Status)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Status)

// SetControlClientStatus calls f.
func (f ObserverFunc) SetControlClientStatus(s Status) { f(s) }

// Options configure Auto.
type Options struct {
	// ServerURL is the login server, http:// or https://.
	ServerURL string
	// MachineKey is the device's Noise key.
	MachineKey key.MachinePrivate
	// Persist is the stored login state of the profile.
	Persist Persist
	// Hostinfo is sent with register and map requests.
	Hostinfo *ctrl.Hostinfo
	// Ephemeral asks control to delete the node when it goes away
	// (weftd sets it for --state=mem:).
	Ephemeral bool
	// Observer gets the reports.
	Observer Observer
	// Logger logs; nil discards.
	Logger *slog.Logger
	// Now tells the time; nil is time.Now.
	Now func() time.Time
	// HTTPClient fetches /key; nil is a plain client.
	HTTPClient *http.Client
	// TLSConfig is for https login servers.
	TLSConfig *tls.Config
	// NetDial opens TCP connections; nil is a net.Dialer.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// StreamWatchdog ends a map stream silent for this long (default 120 s).
	StreamWatchdog time.Duration
	// MaxBackoff caps the wait between retries (default 30 s).
	MaxBackoff time.Duration
	// NoCompression asks for raw JSON map frames instead of zstd.
	NoCompression bool
}

// LoginOpts says how to log in.
type LoginOpts struct {
	// AuthKey is a pre-auth key; empty means interactive (or a restart of
	// an existing login).
	AuthKey string
	// NewKey rotates the node key (--force-reauth, re-login after expiry).
	NewKey bool
}

// Stats are counters for metrics.
type Stats struct {
	Registers   atomic.Int64
	MapStreams  atomic.Int64
	MapFrames   atomic.Int64
	LiteUpdates atomic.Int64
	Errors      atomic.Int64
}

type mode int

const (
	modeIdle mode = iota
	modeLogin
	modeMap
)

// Auto keeps a node logged in and its netmap current.
type Auto struct {
	opts  Options
	log   *slog.Logger
	nc    *noiseClient
	stats Stats

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	kickCh chan struct{}
	liteCh chan struct{}

	mu sync.Mutex
	// guarded by mu:
	persist   Persist
	hostinfo  *ctrl.Hostinfo
	local     engine.LocalState
	wantLogin bool
	loginOpts LoginOpts
	loggedIn  bool
	paused    bool
	cancelOp  context.CancelFunc
	started   bool
}

// New returns an Auto; call Start to run it.
func New(opts Options) (*Auto, error) {
	if opts.ServerURL == "" {
		return nil, errors.New("controlclient: no login server URL")
	}
	if opts.MachineKey.IsZero() {
		return nil, errors.New("controlclient: no machine key")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.StreamWatchdog <= 0 {
		opts.StreamWatchdog = DefaultStreamWatchdog
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.Observer == nil {
		opts.Observer = ObserverFunc(func(Status) {})
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := opts.Logger.With("control", opts.ServerURL)
	c := &Auto{
		opts: opts,
		log:  log,
		nc: &noiseClient{
			serverURL: opts.ServerURL, machineKey: opts.MachineKey, capVer: CapVersion,
			httpClient: opts.HTTPClient, tlsConfig: opts.TLSConfig, netDial: opts.NetDial, log: log,
		},
		ctx: ctx, cancel: cancel,
		done:     make(chan struct{}),
		kickCh:   make(chan struct{}, 1),
		liteCh:   make(chan struct{}, 1),
		persist:  opts.Persist,
		hostinfo: opts.Hostinfo,
	}
	return c, nil
}

// Start runs the client's goroutines until Shutdown.
func (c *Auto) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return
	}
	c.started = true
	go c.run()
	go c.liteLoop()
}

// Shutdown stops the client and closes its connection.
func (c *Auto) Shutdown() {
	c.cancel()
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	if started {
		<-c.done
	}
	c.nc.close()
}

// Stats returns the client's counters.
func (c *Auto) Stats() *Stats { return &c.stats }

// EarlyPayload returns the early payload JSON of the current connection.
func (c *Auto) EarlyPayload() []byte { return c.nc.earlyPayload() }

// Login starts (or restarts) a login. With a stored node key and no
// NewKey this is the restart path: the same key, no auth.
func (c *Auto) Login(o LoginOpts) {
	c.mu.Lock()
	c.wantLogin = true
	c.loginOpts = o
	c.loggedIn = false
	c.kickLocked()
	c.mu.Unlock()
}

// SetPaused stops (true) or resumes the map poll (`down` / `up`).
func (c *Auto) SetPaused(p bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused == p {
		return
	}
	c.paused = p
	c.kickLocked()
}

// SetHostinfo changes the Hostinfo and, when logged in, sends a lite update.
func (c *Auto) SetHostinfo(hi *ctrl.Hostinfo) {
	c.mu.Lock()
	c.hostinfo = hi
	c.mu.Unlock()
	c.triggerLite()
}

// UpdateLocalState records endpoints, NetInfo and disco key from the
// engine and sends a lite update.
func (c *Auto) UpdateLocalState(ls engine.LocalState) {
	c.mu.Lock()
	c.local = ls
	c.mu.Unlock()
	c.triggerLite()
}

// Logout sends the logout register (Expiry = Unix 123) and discards the
// node key, whatever control answers (as upstream does).
func (c *Auto) Logout(ctx context.Context) error {
	c.mu.Lock()
	p := c.persist
	hi := c.hostinfo
	c.persist = Persist{}
	c.wantLogin, c.loggedIn = false, false
	c.kickLocked()
	c.mu.Unlock()

	var err error
	if !p.PrivateNodeKey.IsZero() {
		c.stats.Registers.Add(1)
		_, err = c.nc.register(ctx, &ctrl.RegisterRequest{
			NodeKey: p.PrivateNodeKey.Public(), Expiry: logoutExpiry, Hostinfo: hi,
		})
		if err != nil {
			err = fmt.Errorf("logout: control did not confirm (%w); the node key was discarded locally", err)
		}
	}
	c.opts.Observer.SetControlClientStatus(Status{LoggedOut: true, Persist: &Persist{}})
	return err
}

func (c *Auto) kickLocked() {
	if c.cancelOp != nil {
		c.cancelOp()
	}
	select {
	case c.kickCh <- struct{}{}:
	default:
	}
}

func (c *Auto) triggerLite() {
	select {
	case c.liteCh <- struct{}{}:
	default:
	}
}

func (c *Auto) report(s Status) {
	if s.Err != nil {
		c.stats.Errors.Add(1)
	}
	c.opts.Observer.SetControlClientStatus(s)
}

// run is the client's main loop: log in while wanted and not logged in,
// poll the map while logged in and not paused, otherwise wait for a kick.
func (c *Auto) run() {
	defer close(c.done)
	bo := backoff{base: 250 * time.Millisecond, max: c.opts.MaxBackoff}
	for {
		select {
		case <-c.kickCh: // consumed: this iteration re-reads the mode
		default:
		}
		c.mu.Lock()
		m := modeIdle
		switch {
		case c.wantLogin && !c.loggedIn:
			m = modeLogin
		case c.loggedIn && !c.paused:
			m = modeMap
		}
		opCtx, cancel := context.WithCancel(c.ctx)
		c.cancelOp = cancel
		c.mu.Unlock()

		var err error
		progress := false
		switch m {
		case modeIdle:
			select {
			case <-c.kickCh:
			case <-c.ctx.Done():
			}
		case modeLogin:
			err = c.doLogin(opCtx)
		case modeMap:
			progress, err = c.doMap(opCtx)
		}
		kicked := opCtx.Err() != nil
		cancel()
		if c.ctx.Err() != nil {
			return
		}
		if progress {
			bo.reset()
		}
		if err == nil || kicked {
			continue
		}
		d := bo.next()
		c.log.Info("control request failed; retrying", "err", err, "in", d.Round(time.Millisecond))
		c.report(Status{Err: err})
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-c.kickCh:
		case <-c.ctx.Done():
		}
		t.Stop()
	}
}

// doLogin registers until it succeeds, fails for good (reported with
// LoginFailed, nil returned) or hits a transient error (returned).
func (c *Auto) doLogin(ctx context.Context) error {
	c.mu.Lock()
	o := c.loginOpts
	p := c.persist
	hi := c.hostinfo
	c.mu.Unlock()

	nk, old := p.PrivateNodeKey, p.OldPrivateNodeKey
	regenerated := false
	if nk.IsZero() || o.NewKey {
		if !nk.IsZero() {
			old = nk
		}
		nk = key.NewNode()
		regenerated = true
	}
	followup := ""
	for {
		req := &ctrl.RegisterRequest{
			NodeKey:    nk.Public(),
			OldNodeKey: lbKey(old),
			Followup:   followup,
			Hostinfo:   hi,
			Ephemeral:  c.opts.Ephemeral,
		}
		if o.AuthKey != "" {
			req.Auth = &ctrl.RegisterResponseAuth{AuthKey: o.AuthKey}
		}
		c.stats.Registers.Add(1)
		res, err := c.nc.register(ctx, req)
		if err != nil {
			return err
		}
		switch {
		case res.Error != "":
			c.mu.Lock()
			c.wantLogin = false
			c.mu.Unlock()
			c.report(Status{Err: fmt.Errorf("%s", res.Error), LoginFailed: true})
			return nil
		case res.NodeKeyExpired:
			if regenerated {
				c.mu.Lock()
				c.wantLogin = false
				c.mu.Unlock()
				c.report(Status{Err: errors.New("control says the freshly generated node key is expired"), LoginFailed: true})
				return nil
			}
			// The stored key expired: rotate to a new one and try again.
			c.log.Info("node key expired; rotating", "old", nk.Public().ShortString())
			old, nk, regenerated = nk, key.NewNode(), true
			continue
		case res.AuthURL != "":
			if res.AuthURL == followup {
				// Still waiting on the same login: do not spin.
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
					return ctx.Err()
				}
			} else {
				c.report(Status{AuthURL: res.AuthURL})
			}
			followup = res.AuthURL
			continue
		}
		np := Persist{
			PrivateNodeKey: nk,
			UserProfile: ctrl.UserProfile{
				ID:            res.User.ID,
				LoginName:     res.Login.LoginName,
				DisplayName:   firstNonEmpty(res.Login.DisplayName, res.User.DisplayName),
				ProfilePicURL: firstNonEmpty(res.Login.ProfilePicURL, res.User.ProfilePicURL),
			},
		}
		c.mu.Lock()
		if ctx.Err() != nil {
			c.mu.Unlock()
			return ctx.Err()
		}
		c.persist = np
		c.loggedIn = true
		c.loginOpts = LoginOpts{}
		c.mu.Unlock()
		c.log.Info("logged in", "nodekey", nk.Public().ShortString(), "user", np.UserProfile.LoginName)
		c.report(Status{LoginFinished: true, Persist: &np})
		return nil
	}
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

var errWatchdog = errors.New("map stream silent for too long")

// mapRequestLocked builds a map request from the current state.
func (c *Auto) mapRequestLocked() *ctrl.MapRequest {
	req := &ctrl.MapRequest{
		KeepAlive: true,
		NodeKey:   lbKey(c.persist.PrivateNodeKey),
		DiscoKey:  c.local.DiscoKey,
	}
	if !c.opts.NoCompression {
		req.Compress = ctrl.CompressZstd
	}
	if c.hostinfo != nil {
		hi := *c.hostinfo
		hi.Raw = nil
		if c.local.NetInfo != nil {
			hi.NetInfo = c.local.NetInfo
		}
		req.Hostinfo = &hi
	}
	for _, ep := range c.local.Endpoints {
		req.Endpoints = append(req.Endpoints, ep.Addr)
		req.EndpointTypes = append(req.EndpointTypes, ep.Type)
	}
	return req
}

// doMap runs one long poll until it fails or ctx ends. progress says
// whether at least one map arrived (which resets the backoff).
func (c *Auto) doMap(ctx context.Context) (progress bool, err error) {
	c.mu.Lock()
	req := c.mapRequestLocked()
	c.mu.Unlock()

	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(c.opts.StreamWatchdog, func() { cancel(errWatchdog) })
	defer watchdog.Stop()

	c.stats.MapStreams.Add(1)
	body, err := c.nc.openStream(wctx, req)
	if err != nil {
		if cause := context.Cause(wctx); errors.Is(cause, errWatchdog) {
			return false, cause
		}
		return false, err
	}
	defer body.Close()
	fr, err := newFrameReader(body, 0)
	if err != nil {
		return false, err
	}
	defer fr.close()
	c.triggerLite() // some servers ignore endpoints on the stream request

	ms := newMapSession(req.NodeKey, c.opts.Now)
	var lastHealth []string
	for {
		m, err := fr.next()
		if err != nil {
			if cause := context.Cause(wctx); cause != nil {
				return progress, cause
			}
			if err == io.EOF {
				return progress, errors.New("map stream ended by control")
			}
			return progress, err
		}
		watchdog.Reset(c.opts.StreamWatchdog)
		c.stats.MapFrames.Add(1)
		if u := ms.popBrowserURL(m); u != "" {
			c.report(Status{PopBrowserURL: u})
		}
		if m.Debug != nil && m.Debug.Exit != nil {
			c.log.Warn("ignoring control's request to exit the process", "code", *m.Debug.Exit)
		}
		nm, err := ms.apply(m)
		if err != nil {
			return progress, err
		}
		if nm == nil {
			continue
		}
		progress = true
		s := Status{NetMap: nm}
		if h := ms.Health(); !slices.Equal(h, lastHealth) {
			lastHealth = h
			s.Health = h
			if s.Health == nil {
				s.Health = []string{}
			}
		}
		c.report(s)
	}
}

// liteLoop sends lite map updates (endpoints, NetInfo, Hostinfo) when
// triggered and logged in.
func (c *Auto) liteLoop() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.liteCh:
		}
		c.mu.Lock()
		ok := c.loggedIn && !c.paused && !c.persist.PrivateNodeKey.IsZero()
		req := c.mapRequestLocked()
		c.mu.Unlock()
		if !ok {
			continue
		}
		ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
		err := c.nc.liteUpdate(ctx, req)
		cancel()
		c.stats.LiteUpdates.Add(1)
		if err != nil && c.ctx.Err() == nil {
			c.log.Info("lite map update failed", "err", err)
		}
	}
}
