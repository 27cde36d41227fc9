package xfr

import (
	"bufio"
	"io"
	"sync"
)

// A DNS message is at most 64 KiB, so every reader and packer needs a
// buffer that size, yet most messages (an SOA answer, a small zone's
// AXFR) are a few hundred bytes. A catalog's thousands of members
// transferred at once allocated and cleared gigabytes of them; these
// pools keep a few and reuse them.

var msgBufs = sync.Pool{New: func() any { b := make([]byte, 0xffff); return &b }}

// getMsgBuf returns a 64 KiB buffer; putMsgBuf takes it back.
func getMsgBuf() *[]byte  { return msgBufs.Get().(*[]byte) }
func putMsgBuf(b *[]byte) { msgBufs.Put(b) }

var fileWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 1<<16) }}

// getFileWriter returns a 64 KiB buffered writer onto w; putFileWriter
// takes it back (after Flush), dropping w.
func getFileWriter(w io.Writer) *bufio.Writer {
	bw := fileWriters.Get().(*bufio.Writer)
	bw.Reset(w)
	return bw
}

func putFileWriter(bw *bufio.Writer) {
	bw.Reset(nil)
	fileWriters.Put(bw)
}
