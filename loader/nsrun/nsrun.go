// Package nsrun runs code inside network namespaces, for the veth labs that
// the loader tests, the demo and the benchmark harness build. A Go thread
// that enters a namespace must be locked and put back (or discarded), and a
// socket or XDP link made there stays in that namespace afterwards; these
// helpers do that once for all three.
package nsrun

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// OnThread runs f on a locked OS thread and waits. A thread left in
// another namespace (f failed to restore it) is not unlocked: the runtime
// discards it.
func OnThread(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		err = f()
		if cur, cerr := netns.Get(); cerr == nil {
			if cur.Equal(orig) {
				runtime.UnlockOSThread()
			}
			cur.Close()
		}
		errc <- err
	}()
	return <-errc
}

// In runs f on a locked thread inside ns and waits.
func In(ns netns.NsHandle, f func() error) error {
	return OnThread(func() error {
		orig, err := netns.Get()
		if err != nil {
			return err
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			return err
		}
		defer netns.Set(orig)
		return f()
	})
}

// NewNamed creates the named namespaces (under /run/netns), from a locked
// thread that is put back: creating one moves the calling thread into it.
// On error the handles made so far are returned with it, for the caller's
// cleanup; the others are -1.
func NewNamed(names ...string) ([]netns.NsHandle, error) {
	hs := make([]netns.NsHandle, len(names))
	for i := range hs {
		hs[i] = -1
	}
	err := OnThread(func() error {
		orig, err := netns.Get()
		if err != nil {
			return err
		}
		defer orig.Close()
		defer netns.Set(orig)
		for i, n := range names {
			if hs[i], err = netns.NewNamed(n); err != nil {
				hs[i] = -1
				return fmt.Errorf("network namespace %s: %w", n, err)
			}
		}
		return nil
	})
	return hs, err
}
