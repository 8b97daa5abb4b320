package monitor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/gopcua/opcua/ua"

	"github.com/plcwatch/plcwatch/connectors"
	"github.com/plcwatch/plcwatch/connectors/logix"
	opcuaconn "github.com/plcwatch/plcwatch/connectors/opcua"
	"github.com/plcwatch/plcwatch/connectors/s7"
	"github.com/plcwatch/plcwatch/limits"
)

// Error classes of a failed collection. A "collection failed" alert is
// keyed by the device and one of these, never by the error's text, which
// carries local ports, addresses and timings that differ on every attempt.
const (
	ClassTimeout           = "timeout"
	ClassRefused           = "connection refused"
	ClassReset             = "connection reset"
	ClassHostUnreachable   = "host unreachable"
	ClassCertificate       = "certificate"
	ClassAuthentication    = "authentication"
	ClassProtocol          = "protocol error"
	ClassBusy              = "device busy"
	ClassNotAllowed        = "request refused by the read-only gate"
	ClassBreakerOpen       = "circuit breaker open"
	ClassLocked            = "device locked by another plcwatch"
	ClassOther             = "other"
	ClassCanceled          = "canceled"
	classStatusCodePrefix  = "OPC UA "
	classDeviceErrorPrefix = "device error "
)

// ErrorClasser is implemented by errors that know their class (one of the
// Class constants or another short, stable text). ErrorClass prefers it.
type ErrorClasser interface {
	ErrorClass() string
}

// ErrorClass returns the stable class of a collection error, derived from
// typed and sentinel errors in its chain (net and syscall errors, TLS and
// X.509 errors, OPC UA status codes, S7 and CIP error replies, plcwatch's
// own sentinels), never from its message. An error nothing recognizes is
// ClassOther.
func ErrorClass(err error) string {
	if err == nil {
		return ""
	}
	var c ErrorClasser
	if errors.As(err, &c) {
		if s := c.ErrorClass(); s != "" {
			return s
		}
	}
	var (
		sc       ua.StatusCode
		dnsErr   *net.DNSError
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		verify   *tls.CertificateVerificationError
		s7Err    *s7.DeviceError
		cipErr   *logix.StatusError
		netErr   net.Error
	)
	switch {
	case errors.Is(err, limits.ErrBreakerOpen):
		return ClassBreakerOpen
	case errors.Is(err, limits.ErrLocked):
		return ClassLocked
	case errors.Is(err, connectors.ErrNotAllowed):
		return ClassNotAllowed
	case errors.Is(err, opcuaconn.ErrUntrustedCertificate), errors.As(err, &unknown), errors.As(err, &invalid),
		errors.As(err, &hostname), errors.As(err, &verify):
		return ClassCertificate
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return ClassTimeout
	case errors.Is(err, context.Canceled):
		return ClassCanceled
	case errors.Is(err, syscall.ECONNREFUSED):
		return ClassRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return ClassReset
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTDOWN),
		errors.Is(err, syscall.ENETDOWN), errors.As(err, &dnsErr):
		return ClassHostUnreachable
	case errors.As(err, &sc):
		return statusClass(sc)
	case errors.As(err, &s7Err):
		return fmt.Sprintf("%s0x%04X", classDeviceErrorPrefix, s7Err.Code)
	case errors.As(err, &cipErr):
		return fmt.Sprintf("%sCIP 0x%02X", classDeviceErrorPrefix, cipErr.Status)
	case errors.As(err, &netErr) && netErr.Timeout():
		return ClassTimeout
	}
	return ClassOther
}

// statusClass classes an OPC UA service or session failure.
func statusClass(sc ua.StatusCode) string {
	switch sc {
	case ua.StatusBadTimeout:
		return ClassTimeout
	case ua.StatusBadIdentityTokenInvalid, ua.StatusBadIdentityTokenRejected, ua.StatusBadUserAccessDenied:
		return ClassAuthentication
	case ua.StatusBadCertificateInvalid, ua.StatusBadCertificateUntrusted, ua.StatusBadSecurityChecksFailed:
		return ClassCertificate
	case ua.StatusBadConnectionClosed, ua.StatusBadSecureChannelClosed, ua.StatusBadServerNotConnected, ua.StatusBadCommunicationError:
		return ClassReset
	case ua.StatusBadTooManySessions, ua.StatusBadServerHalted, ua.StatusBadResourceUnavailable:
		return ClassBusy
	}
	return fmt.Sprintf("%s0x%08X", classStatusCodePrefix, uint32(sc))
}
