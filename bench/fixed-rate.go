// Open-loop load at a fixed rate for the webhook benchmarks (wrk2 is not packaged in Debian): sends one POST every
// 1/RATE s over CONNS keep-alive HTTPS connections and reports latency quantiles. Each latency runs from the moment
// the request was due, so a stalled server is charged for the requests queued behind it (no coordinated omission).
// As in wrk2, each of CONNS senders owns every CONNS-th due time and sends it itself; a sender waits for its due time
// with nanosleep(2), not time.Sleep: Go's timers wait in epoll_wait, whose timeout is whole milliseconds on Linux, so
// time.Sleep woke up to 1 ms late and that lateness was charged to every request (a Go no-op server measured 0.9 ms at
// p50; 0.3-0.4 ms with this). A sender still waiting for an answer when its next request is due (CONNS/RATE s later,
// 32 ms by default) sends it late, and that request is charged from its due time.
// Go rather than Node: a Node client's own timers, GC and TLS work showed up as 40-60 ms p99 even against a no-op
// server, which hid the server's tail. The connections are opened (one warm-up request each) before the clock starts.
// The benchmarks build it into ~/.cache/lanyard/bench with the machine's Go; the binary is never committed.
// Usage: fixed-rate URL BODY_FILE RATE SECONDS [CONNS]  → prints {"sent","errors","p50","p90","p99","p999","max"} in ms
package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// sleepUntil waits for t in the kernel's high-resolution sleep; the goroutine's thread blocks in it (see the header).
func sleepUntil(t time.Time) {
	for d := time.Until(t); d > 0; d = time.Until(t) {
		ts := syscall.NsecToTimespec(int64(d))
		_ = syscall.Nanosleep(&ts, nil)
	}
}

func main() {
	if len(os.Args) < 5 {
		fmt.Fprintln(os.Stderr, "usage: fixed-rate URL BODY_FILE RATE SECONDS [CONNS]")
		os.Exit(2)
	}
	// While senders sleep in nanosleep, a second P serves the connections (the client is pinned to one core).
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	url := os.Args[1]
	body, err := os.ReadFile(os.Args[2])
	must(err)
	rate, err := strconv.ParseFloat(os.Args[3], 64)
	must(err)
	seconds, err := strconv.ParseFloat(os.Args[4], 64)
	must(err)
	conns := 16
	if len(os.Args) > 5 {
		conns, err = strconv.Atoi(os.Args[5])
		must(err)
	}
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, // the benchmark's own throwaway CA
			MaxConnsPerHost:     conns,
			MaxIdleConnsPerHost: conns,
			TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1, as the API server's webhook client
		},
	}
	post := func() bool {
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}

	var warm sync.WaitGroup
	for i := 0; i < conns; i++ {
		warm.Add(1)
		go func() { defer warm.Done(); post() }()
	}
	warm.Wait()

	total := int(rate*seconds + 0.5)
	if total < 1 {
		fmt.Fprintln(os.Stderr, "RATE × SECONDS must be at least 1")
		os.Exit(2)
	}
	interval := time.Duration(float64(time.Second) / rate)
	latencies := make([]float64, total)
	failed := make([]bool, total)
	var done sync.WaitGroup
	start := time.Now().Add(10 * time.Millisecond)
	for k := 0; k < conns; k++ {
		done.Add(1)
		go func(k int) {
			defer done.Done()
			for i := k; i < total; i += conns {
				due := start.Add(time.Duration(i) * interval)
				sleepUntil(due)
				failed[i] = !post()
				latencies[i] = float64(time.Since(due)) / float64(time.Millisecond)
			}
		}(k)
	}
	done.Wait()

	errors := 0
	for _, f := range failed {
		if f {
			errors++
		}
	}
	sort.Float64s(latencies)
	q := func(p float64) float64 {
		i := int(p * float64(len(latencies)))
		if i >= len(latencies) {
			i = len(latencies) - 1
		}
		return latencies[i]
	}
	out, _ := json.Marshal(map[string]any{
		"sent": total, "errors": errors,
		"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "p999": q(0.999), "max": latencies[len(latencies)-1],
	})
	fmt.Println(string(out))
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
