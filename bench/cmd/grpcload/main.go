// Command grpcload drives unary KServe V2 ModelInfer calls with grpc-go
// (raw-bytes codec, no generated code) for the gRPC benchmark
// (bench/grpc.sh): CONNS connections with STREAMS calls in flight on
// each, for a duration or a number of calls, and reports calls/s and the
// gRPC status of every call, so that errors carried in grpc-status on an
// HTTP 200 are seen. -body writes the framed request (5-byte gRPC prefix
// and message) for h2load instead.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vaneproxy/vane/examples/toymodel/toy"
)

const method = "/" + toy.InferenceService + "/ModelInfer"

func main() {
	addr := flag.String("addr", "127.0.0.1:18511", "host:port to call (h2c)")
	conns := flag.Int("conns", 4, "connections")
	streams := flag.Int("streams", 16, "calls in flight per connection")
	duration := flag.Duration("duration", 10*time.Second, "how long to call, when -calls is 0")
	calls := flag.Int64("calls", 0, "stop after this many calls (0: run for -duration)")
	body := flag.String("body", "", "write the framed request to this file and exit")
	flag.Parse()

	req := request()
	if *body != "" {
		framed := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(req)))
		if err := os.WriteFile(*body, append(framed, req...), 0o644); err != nil {
			fail(err)
		}
		return
	}
	if *conns < 1 || *streams < 1 {
		fail(fmt.Errorf("-conns and -streams must be >= 1"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	if *calls > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	}
	defer cancel()

	var started, done atomic.Int64
	var mu sync.Mutex // guards codes
	codes := map[string]int64{}
	var wg sync.WaitGroup
	start := time.Now()
	for range *conns {
		cc, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			fail(err)
		}
		defer cc.Close()
		for range *streams {
			wg.Add(1)
			go func() {
				defer wg.Done()
				local := map[string]int64{}
				var out []byte
				for ctx.Err() == nil && (*calls == 0 || started.Add(1) <= *calls) {
					err := cc.Invoke(ctx, method, &req, &out, grpc.ForceCodec(toy.RawCodec{}))
					if err != nil && ctx.Err() != nil {
						break // cut by the end of the run, not a failure
					}
					local[status.Code(err).String()]++
					done.Add(1)
				}
				mu.Lock()
				for k, v := range local {
					codes[k] += v
				}
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	keys := make([]string, 0, len(codes))
	for k := range codes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	errs := done.Load() - codes["OK"]
	fmt.Printf("calls %d errors %d calls_per_s %.0f", done.Load(), errs, float64(done.Load())/secs)
	for _, k := range keys {
		fmt.Printf(" %s=%d", k, codes[k])
	}
	fmt.Println()
	if errs > 0 || done.Load() == 0 {
		os.Exit(1)
	}
}

// request is one iris row as a ModelInferRequest with typed FP32 contents.
func request() []byte {
	m := toy.InferMessage{ModelName: "iris", Tensors: []toy.InferTensor{
		{Name: "input0", Datatype: "FP32", Shape: []int64{1, 4}, Values: []float64{6.8, 2.8, 4.8, 1.4}}}}
	b, err := m.MarshalRequest()
	if err != nil {
		fail(err)
	}
	return b
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "grpcload:", err)
	os.Exit(2)
}
