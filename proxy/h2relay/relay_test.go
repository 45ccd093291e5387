package h2relay

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestUnaryConcurrent(t *testing.T) {
	be := startBackend(t, echoBackend("echo:"))
	r, _ := relayTo(t, be, nil)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for c := 0; c < 4; c++ {
		cc := dialGRPC(t, r.addr)
		for s := 0; s < 16; s++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 20; i++ {
					req := []byte(fmt.Sprintf("c%d s%d i%d", c, s, i))
					out, err := unary(ctx, cc, "/svc/Unary", req)
					if err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(out, append([]byte("echo:"), req...)) {
						errs <- fmt.Errorf("got %q for %q", out, req)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
