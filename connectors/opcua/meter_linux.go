package opcua

import (
	"context"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// meter reads the kernel's byte counters of the connection gopcua dials
// (TCP_INFO), since gopcua reports no sizes: the bytes the gate records are
// what crossed the wire, secure-channel framing, signatures and padding
// included.
type meter struct {
	mu sync.Mutex
	rc syscall.RawConn
}

// control is a net.Dialer ControlContext hook that keeps the socket.
func (m *meter) control(_ context.Context, _, _ string, c syscall.RawConn) error {
	m.mu.Lock()
	m.rc = c
	m.mu.Unlock()
	return nil
}

// counts returns the bytes received and sent on the last dialed connection
// so far, or zeros when unknown (no connection, or it is closed).
func (m *meter) counts() (received, sent int64) {
	m.mu.Lock()
	rc := m.rc
	m.mu.Unlock()
	if rc == nil {
		return 0, 0
	}
	rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			received, sent = int64(info.Bytes_received), int64(info.Bytes_sent)
		}
	})
	return received, sent
}
