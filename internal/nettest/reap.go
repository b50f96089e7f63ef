package nettest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// reapStale deletes namespaces whose marker names a test process that no
// longer exists (killed by go test -timeout or a signal before its cleanups
// ran). Namespaces without a marker are never touched.
func reapStale(logf func(string, ...any)) {
	entries, err := os.ReadDir(markerDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		ns := e.Name()
		if !strings.HasPrefix(ns, NamePrefix) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(markerDir, ns))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		logf("nettest: removing namespace %s left by dead test process %d", ns, pid)
		if err := deleteNamespace(ns); err != nil {
			logf("nettest: %v", err)
		}
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// killNamespacePids sends SIGKILL to every process still in namespace ns,
// such as children that left their process group.
func killNamespacePids(ctx context.Context, ns string) {
	ip, err := LookTool("ip")
	if err != nil {
		return
	}
	out, err := commandOutput(ctx, ip, "netns", "pids", ns)
	if err != nil {
		return
	}
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
