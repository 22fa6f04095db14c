module pingpong/bench/original

go 1.19
