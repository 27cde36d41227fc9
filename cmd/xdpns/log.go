package main

import (
	"io"
	"log/slog"

	"github.com/xdpns/xdpns/userspace/config"
)

// newLogger returns the root logger; components take a child with
// component=NAME so every record says where it came from.
func newLogger(w io.Writer, c config.Log) *slog.Logger {
	opt := &slog.HandlerOptions{Level: c.Level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opt))
	}
	return slog.New(slog.NewTextHandler(w, opt))
}

func component(log *slog.Logger, name string) *slog.Logger {
	return log.With("component", name)
}
