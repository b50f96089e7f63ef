package nettest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// Cmd describes a program to start in a node.
type Cmd struct {
	// Name labels the process and its log file; default: base of Args[0].
	Name string
	// Args is the program and its arguments.
	Args []string
	// Env is added to the test process's environment (less its proxy
	// variables, see [LabEnv]); later entries win.
	Env []string
	// Dir is the working directory; default: the lab directory.
	Dir string
}

// Proc is a program running inside a node. Its stdout and stderr go,
// interleaved, to LogPath.
type Proc struct {
	// Name is Cmd.Name.
	Name string
	// LogPath is the file holding the program's output.
	LogPath string

	node *Node
	pid  int
	done chan struct{}
	err  error // exit status; written before done is closed
}

// Start runs c inside the node with `ip netns exec` (which execs the
// program, so Pid is the program's own PID) in a new process group. The lab
// stops it when the test ends. Start fails the test if the program cannot be
// started; call it from the test goroutine.
func (n *Node) Start(c Cmd) *Proc {
	l := n.lab
	l.t.Helper()
	p, err := n.start(c)
	if err != nil {
		l.t.Fatalf("nettest: start in %s: %v", n.Name, err)
	}
	return p
}

func (n *Node) start(c Cmd) (*Proc, error) {
	if len(c.Args) == 0 {
		return nil, errors.New("no program")
	}
	name := c.Name
	if name == "" {
		name = filepath.Base(c.Args[0])
	}
	logPath := n.lab.logPath(n.Name + "-" + name)
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own copy
	fmt.Fprintf(f, "# %s: ip netns exec %s %s\n", time.Now().Format(time.RFC3339Nano), n.NS, strings.Join(c.Args, " "))

	// context.Background: the process lives until Stop, not until a caller's
	// context ends; the lab's cleanup is the backstop.
	cmd, err := nsCommand(context.Background(), n.NS, c.Args)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = LabEnv(c.Env...)
	cmd.Dir = c.Dir
	if cmd.Dir == "" {
		cmd.Dir = n.lab.dir
	}
	p := &Proc{Name: name, LogPath: logPath, node: n, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p.pid = cmd.Process.Pid
	n.lab.mu.Lock()
	n.lab.procs = append(n.lab.procs, p)
	n.lab.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// LabEnv returns the test process's environment without proxy variables
// (http_proxy, HTTPS_PROXY, ALL_PROXY, NO_PROXY in any case: a proxy is
// never reachable from a lab, and a program that obeyed one would fail in
// confusing ways), followed by extra.
func LabEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "http_proxy", "https_proxy", "all_proxy", "no_proxy":
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// logPath returns a unique log file path for base in the lab directory.
func (l *Lab) logPath(base string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	name := base + ".log"
	for i := 2; l.logNames[name]; i++ {
		name = fmt.Sprintf("%s.%d.log", base, i)
	}
	l.logNames[name] = true
	return filepath.Join(l.dir, name)
}

// Pid is the program's process ID, also its process group ID.
func (p *Proc) Pid() int { return p.pid }

// Node is the node the program runs in.
func (p *Proc) Node() *Node { return p.node }

// Done is closed when the program has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the program has exited, and its exit error.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Signal sends sig to the program's process group.
func (p *Proc) Signal(sig syscall.Signal) error {
	if exited, _ := p.Exited(); exited {
		return nil
	}
	err := syscall.Kill(-p.pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// Stop sends SIGTERM to the process group, then SIGKILL after 5s, and waits
// for the program to exit. It returns the exit error, nil for a clean exit
// or one caused by Stop's own signals. It is safe to call more than once.
func (p *Proc) Stop() error {
	if exited, err := p.Exited(); exited {
		return err
	}
	p.Signal(syscall.SIGTERM)
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.Signal(syscall.SIGKILL)
		<-p.done
	}
	// Children that stayed in the group after the leader left.
	syscall.Kill(-p.pid, syscall.SIGKILL)
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return nil
		}
	}
	return p.err
}

// Log returns everything the program has written so far.
func (p *Proc) Log() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	return string(b)
}

// Tail returns the last n lines of the log.
func (p *Proc) Tail(n int) string {
	b := bytes.TrimRight([]byte(p.Log()), "\n")
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// state describes whether the program still runs, for log headers.
func (p *Proc) state() string {
	if exited, err := p.Exited(); exited {
		if err != nil {
			return "exited: " + err.Error()
		}
		return "exited: status 0"
	}
	return fmt.Sprintf("running, pid %d", p.pid)
}
