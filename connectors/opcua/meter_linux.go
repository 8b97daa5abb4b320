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
//
// It keeps a duplicate of the last dialed socket's descriptor, so that the
// counters stay readable after gopcua closes its own descriptor inside a
// call (GetEndpoints and CloseSession close the connection before they
// return). The duplicate holds the connection open until the next dial or
// release, which the connector calls when a snapshot ends.
type meter struct {
	mu  sync.Mutex
	fd  int    // the duplicate; meaningful only when has is true
	has bool   // whether fd is open
	gen uint64 // counts dials, so a caller can tell a new connection from the old one
}

// control is a net.Dialer ControlContext hook that keeps a duplicate of the
// socket's descriptor.
func (m *meter) control(_ context.Context, _, _ string, c syscall.RawConn) error {
	dup, derr := -1, error(nil)
	if err := c.Control(func(fd uintptr) {
		dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil || derr != nil {
		dup = -1 // counting is best effort: never fail the dial for it
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closeLocked()
	m.gen++
	if dup >= 0 {
		m.fd, m.has = dup, true
	}
	return nil
}

// counts returns the bytes received and sent on the last dialed connection
// so far (zeros when unknown) and which dial that connection was.
func (m *meter) counts() (received, sent int64, gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.has {
		return 0, 0, m.gen
	}
	if info, err := unix.GetsockoptTCPInfo(m.fd, unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
		received, sent = int64(info.Bytes_received), int64(info.Bytes_sent)
	}
	return received, sent, m.gen
}

// release closes the duplicate descriptor; safe to call more than once.
func (m *meter) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closeLocked()
}

func (m *meter) closeLocked() {
	if m.has {
		unix.Close(m.fd)
		m.has = false
	}
}
