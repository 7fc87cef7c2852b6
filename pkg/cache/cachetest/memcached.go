// Package cachetest runs a real memcached for tests of the components that use one.
package cachetest

import (
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// MemcachedBinary is where Debian's memcached package installs the server.
const MemcachedBinary = "/usr/bin/memcached"

// Memcached is a memcached server started for one test.
type Memcached struct {
	// Addr is the server's host:port.
	Addr   string
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartMemcached starts memcached on a free port of 127.0.0.1 and stops it when the test ends. The test
// is skipped when the binary is not installed (CI installs it). It returns once the server accepts
// connections.
func StartMemcached(t testing.TB) *Memcached {
	t.Helper()
	if _, err := os.Stat(MemcachedBinary); err != nil {
		t.Skipf("%s is not installed (apt-get install memcached): %v", MemcachedBinary, err)
	}
	addr := freeAddr(t)
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	args := []string{"-l", "127.0.0.1", "-p", port, "-U", "0"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody") // memcached refuses to run as root otherwise
	}
	m := &Memcached{Addr: addr, cmd: exec.Command(MemcachedBinary, args...), exited: make(chan struct{})}
	require.NoError(t, m.cmd.Start())
	go func() {
		_ = m.cmd.Wait()
		close(m.exited)
	}()
	t.Cleanup(func() {
		_ = m.cmd.Process.Kill() // fails harmlessly when Stop already killed it
		<-m.exited
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			require.NoError(t, conn.Close())
			return m
		}
		select {
		case <-m.exited:
			t.Fatalf("memcached %v exited before accepting connections", args)
		default:
		}
		require.True(t, time.Now().Before(deadline), "memcached did not accept connections on %s within 10s: %v", addr, err)
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline, not waiting for time to pass
	}
}

// Stop kills the server now, as a crash would, and returns once it has exited.
func (m *Memcached) Stop(t testing.TB) {
	t.Helper()
	require.NoError(t, m.cmd.Process.Kill())
	<-m.exited
}

// freeAddr returns an address of 127.0.0.1 that nothing listens on now.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}
