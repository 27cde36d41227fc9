package loader

// The XDP program is C in ../bpf; bpf2go compiles it and writes the Go
// bindings (xdpns_bpfel.go, xdpns_bpfel.o), both committed. Regenerate with
// `go generate ./loader` after changing anything in ../bpf.
//go:generate go tool bpf2go -cc clang-16 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" -target bpfel -type answer -type answer_link -type answer_slot -type config -type index_bucket -type index_val -type service_addr -type stat -type rrl_params -type rrl_key -type rrl_entry -type rrl_exempt_key -type nsec3_entry -type nsec3_zone -type nsec_ce xdpns ../bpf/xdpns.c

// The NSEC3 test programs (bpf/nsec3_selftest.c), for loader's tests only.
//go:generate go tool bpf2go -cc clang-16 -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" -target bpfel -output-suffix _test -type nsec3_entry nsec3Selftest ../bpf/nsec3_selftest.c
