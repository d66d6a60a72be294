/* SPDX-License-Identifier: MIT */
/* The subcommands of mpklink-bench, each in a file of its own. */
#ifndef MPK_BENCH_SUBCOMMANDS_H
#define MPK_BENCH_SUBCOMMANDS_H

/* Returns the process exit status: 0 done, 1 a measurement failed, 2 usage. */
int echo_main(int argc, char **argv);
/* Unary gRPC calls against any server, timed and checked (grpc.c). */
int grpc_main(int argc, char **argv);
/* The demo server (or yours) over tcp, unix and mpklink, side by side (compare.c). */
int compare_main(int argc, char **argv);

#endif
