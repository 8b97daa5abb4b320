//go:build !linux

package opcua

import (
	"context"
	"syscall"
)

// meter reports no byte counts outside Linux (TCP_INFO is Linux's).
type meter struct{}

func (m *meter) control(context.Context, string, string, syscall.RawConn) error { return nil }

func (m *meter) counts() (received, sent int64, gen uint64) { return 0, 0, 0 }

func (m *meter) release() {}
