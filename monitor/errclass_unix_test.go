package monitor

import "syscall"

func errReset() error   { return syscall.ECONNRESET }
func errRefused() error { return syscall.ECONNREFUSED }
