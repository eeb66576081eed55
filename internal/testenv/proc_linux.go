package testenv

import "syscall"

func sysProcAttr() *syscall.SysProcAttr {
	// Pdeathsig kills the server if the test binary dies without running
	// cleanups (a -timeout panic, a SIGKILL), so no server outlives a run.
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
