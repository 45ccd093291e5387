package proxy

import (
	"net"
	"syscall"
	"testing"
)

// The h2c relay writes to a client socket without blocking only when the
// conn sniff hands it still reaches the socket (h2relay's sink).
func TestSniffedConnKeepsSyscallConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte(h2Preface))
		_, _ = c.Read(make([]byte, 1))
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, isH2, err := sniff(c)
	if err != nil || !isH2 {
		t.Fatalf("sniff: %v %v", isH2, err)
	}
	sc, ok := pc.(syscall.Conn)
	if !ok {
		t.Fatal("the sniffed conn is not a syscall.Conn")
	}
	if _, err := sc.SyscallConn(); err != nil {
		t.Fatalf("SyscallConn: %v", err)
	}
}
