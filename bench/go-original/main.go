// Command original is the Go original of pingpong as its README describes it, rebuilt
// for `pingpong bench` to measure side by side with the NATS services: players answer
// GET / with HIT or MISS (--hit-chance N percent); the table (--mode server) plays a
// game for each GET / with one HTTP GET per swing, ping then pong, until one misses
// (99 rounds: a draw), and answers the transcript in the format the proxy keeps. As
// the original, it asks with Go's default HTTP client and holds nothing else: no
// event log, no retries, no scores.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net"
	"net/http"
	"os"
)

const maxRounds = 99

func main() {
	log.SetFlags(0)
	mode := flag.String("mode", "client", "client: a player; server: the table")
	hitChance := flag.Int("hit-chance", 50, "percent of swings a player hits")
	listen := flag.String("listen", "127.0.0.1:3000", "address to serve on")
	ping := flag.String("ping-endpoint", "http://ping:3000/", "the ping player's URL")
	pong := flag.String("pong-endpoint", "http://pong:3000/", "the pong player's URL")
	logGames := flag.Bool("log-games", true, "log the start and end of each game, as the original")
	flag.Parse()
	var handler http.HandlerFunc
	switch *mode {
	case "client":
		if *hitChance < 0 || *hitChance > 100 {
			log.Fatalf("--hit-chance must be 0 to 100, not %d", *hitChance)
		}
		handler = player(*hitChance)
	case "server":
		handler = table(*ping, *pong, *logGames)
	default:
		log.Fatalf("--mode must be client or server, not %q", *mode)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "%s listening on %s\n", *mode, ln.Addr())
	log.Fatal(http.Serve(ln, handler))
}

func player(hitChance int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if rand.Intn(100)+1 > hitChance {
			io.WriteString(w, "MISS")
		} else {
			io.WriteString(w, "HIT")
		}
	}
}

func table(ping, pong string, logGames bool) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if logGames {
			log.Println("Start game")
		}
		if err := play(w, ping, pong); err != nil {
			log.Println(err)
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if logGames {
			log.Println("End game")
		}
	}
}

// play writes the transcript of one game to w; an error before its first line.
func play(w io.Writer, ping, pong string) error {
	sides := [2]struct{ name, url string }{{"PING", ping}, {"PONG", pong}}
	for stroke := 0; stroke < 2*maxRounds; stroke++ {
		side, other := sides[stroke%2], sides[(stroke+1)%2]
		hit, err := swing(side.url)
		if err != nil {
			if stroke == 0 {
				return err
			}
			hit = false // the transcript has begun: the side that could not answer misses
		}
		if !hit {
			fmt.Fprintf(w, "%s --> MISS\nThe winner is %s\n", side.name, other.name)
			return nil
		}
		fmt.Fprintf(w, "%s --> HIT\n", side.name)
	}
	fmt.Fprintln(w, "DRAW")
	return nil
}

func swing(url string) (bool, error) {
	resp, err := http.Get(url)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return false, err
	}
	switch string(body) {
	case "HIT":
		return true, nil
	case "MISS":
		return false, nil
	}
	return false, fmt.Errorf("a player answered %q", body)
}
