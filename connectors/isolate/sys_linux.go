package isolate

import "syscall"

// sysProcAttr makes the kernel kill the child if the parent dies first, so
// no session outlives the daemon.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
