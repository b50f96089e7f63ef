// Package interop runs weft against the official Tailscale programs
// (reference v1.102.5) inside network namespaces built by
// weft.dev/weft/internal/nettest.
//
// It owns the helpers those scenarios share: installing the official
// binaries into a cache ([InstallTailscale]), building weft's own commands
// once per test binary ([WeftBuild]), a throw-away TLS CA ([NewTLS]), and
// wrappers that run tailscaled, the tailscale CLI and derper in a node
// ([StartTailscaled], [StartDerper]). [NewLab] builds a whole lab in one call.
//
// Interop tests need root; they call nettest.RequireRoot. Product code must
// never import this package, and this package never imports tailscale.com:
// the official programs are only run as binaries.
package interop
