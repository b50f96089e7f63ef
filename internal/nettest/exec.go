package nettest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// DefaultExecTimeout bounds [Node.Exec] and [Node.Output].
const DefaultExecTimeout = 30 * time.Second

// Exec runs args inside namespace ns with `ip netns exec` and returns its
// combined stdout and stderr. The command and everything it started are
// killed when ctx ends.
func Exec(ctx context.Context, ns string, args ...string) (string, error) {
	var out bytes.Buffer
	err := run(ctx, ns, args, &out, &out)
	return out.String(), err
}

// Output is like [Exec] but returns stdout only; stderr is added to the
// error when the command fails.
func Output(ctx context.Context, ns string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	err := run(ctx, ns, args, &stdout, &stderr)
	if err != nil && stderr.Len() > 0 {
		err = fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), err
}

func run(ctx context.Context, ns string, args []string, stdout, stderr *bytes.Buffer) error {
	if len(args) == 0 {
		return errors.New("exec: no command")
	}
	cmd, err := nsCommand(ctx, ns, args)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, ctx.Err())
		}
		return fmt.Errorf("in %s: %s: %w", ns, strings.Join(args, " "), err)
	}
	return nil
}

// nsCommand builds `ip netns exec ns args...` in its own process group, so
// that cancelling ctx kills the command's children too, and with a death
// signal so a crashed test binary does not leave it running.
func nsCommand(ctx context.Context, ns string, args []string) (*exec.Cmd, error) {
	ip, err := LookTool("ip")
	if err != nil {
		return nil, err
	}
	full := append([]string{"netns", "exec", ns}, args...)
	cmd := exec.CommandContext(ctx, ip, full...)
	cmd.Env = LabEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return killGroup(cmd, syscall.SIGKILL) }
	// A grandchild holding the output pipe must not hang the caller.
	cmd.WaitDelay = 2 * time.Second
	return cmd, nil
}

// killGroup signals the process group led by cmd's process.
func killGroup(cmd *exec.Cmd, sig syscall.Signal) error {
	if cmd.Process == nil {
		return nil
	}
	err := syscall.Kill(-cmd.Process.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// ipCmd runs the ip binary in the host's namespace context; callers always
// pass `-n <ns>` or `netns` verbs so nothing in the host namespace changes.
func ipCmd(ctx context.Context, args ...string) error {
	return toolCmd(ctx, "ip", "", args...)
}

// toolCmd runs a tool with optional stdin and returns an error that includes
// its output.
func toolCmd(ctx context.Context, tool, stdin string, args ...string) error {
	path, err := LookTool(tool)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// commandOutput runs a host-side tool and returns its stdout.
func commandOutput(ctx context.Context, path string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, path, args...).Output()
	return string(out), err
}

// Exec runs args inside the node, bounded by [DefaultExecTimeout], and
// returns the combined output. See the package-level [Exec].
func (n *Node) Exec(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultExecTimeout)
	defer cancel()
	return Exec(ctx, n.NS, args...)
}

// ExecContext is Exec with the caller's context instead of the default
// timeout.
func (n *Node) ExecContext(ctx context.Context, args ...string) (string, error) {
	return Exec(ctx, n.NS, args...)
}

// Output runs args inside the node, bounded by [DefaultExecTimeout], and
// returns stdout only. See the package-level [Output].
func (n *Node) Output(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultExecTimeout)
	defer cancel()
	return Output(ctx, n.NS, args...)
}

// Ping sends one ICMP echo to dst from inside the node and waits up to a
// second for the reply.
func (n *Node) Ping(dst netip.Addr) error {
	_, err := n.Exec("ping", "-n", "-c", "1", "-W", "1", dst.String())
	return err
}
