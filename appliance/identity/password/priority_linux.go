package password

import "syscall"

// lowerThreadPriority sets the calling thread's nice value to 19, the
// lowest priority: on Linux a thread id is a valid PRIO_PROCESS target
// and the value applies to that thread alone. A failure (a seccomp
// filter, say) leaves the priority as it was: hashing is then only
// bounded, as it always is.
func lowerThreadPriority() {
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 19)
}
