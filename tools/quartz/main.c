/*
 * main.c - entry point of the quartz command-line tool: the subcommand
 * table, global options (--help, --version) and `quartz help CMD`.
 *
 * Copyright (c) 2026 The QuartzDB authors. MIT licence (see LICENSE).
 */
#include "cli.h"

#include <errno.h>
#include <string.h>

static const cli_command commands[] = {
    {"create", cmd_create, "create an empty database directory", cli_usage_create},
    {"import", cmd_import, "bulk-load vectors from an fvecs or JSON-lines file", cli_usage_import},
    {"search", cmd_search, "k nearest neighbours of a query vector", cli_usage_search},
    {"get", cmd_get, "print the vector and metadata stored under an id", cli_usage_get},
    {"delete", cmd_delete, "delete vectors by id", cli_usage_delete},
    {"kv", cmd_kv, "key-value store: get, put, del, scan", cli_usage_kv},
    {"stats", cmd_stats, "index statistics and on-disk size", cli_usage_stats},
    {"check", cmd_check, "verify the index's invariants", cli_usage_check},
    {"compact", cmd_compact, "unlink deleted vectors and flush to disk", cli_usage_compact},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

static void print_help(FILE *f)
{
    fputs("Usage: quartz [--help | --version] COMMAND [ARGS...]\n"
          "\n"
          "Command-line access to QuartzDB vector database directories.\n"
          "\n"
          "Commands:\n",
          f);
    for (size_t i = 0; i < NCOMMANDS; i++) fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fputs("  help      show the usage of a command: quartz help COMMAND\n"
          "\n"
          "Options:\n"
          "  -h, --help     show this help\n"
          "  -V, --version  show the tool and library versions\n"
          "\n"
          "Every command also takes --help. Exit status: 0 success, 1 runtime error,\n"
          "2 usage error.\n",
          f);
}

static int finish(const char *cmd, int rc)
{
    /* Report output errors (full disk, closed pipe) instead of exiting 0. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "quartz: %s: error writing to standard output: %s\n", cmd, strerror(errno));
        return rc ? rc : CLI_FAIL;
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return CLI_USAGE;
    }
    const char *a = argv[1];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
        print_help(stdout);
        return finish("help", CLI_OK);
    }
    if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
        printf("quartz %s (libquartz %s, %s kernels)\n", QZ_VERSION_STRING, qz_version_string(), qz_simd_backend());
        return finish("version", CLI_OK);
    }
    if (strcmp(a, "help") == 0) {
        if (argc == 2) {
            print_help(stdout);
            return finish("help", CLI_OK);
        }
        if (argc > 3) {
            fprintf(stderr, "quartz: help: too many arguments\nTry 'quartz --help'.\n");
            return CLI_USAGE;
        }
        const cli_command *c = find_command(argv[2]);
        if (!c) {
            fprintf(stderr, "quartz: help: unknown command '%s'\nTry 'quartz --help'.\n", argv[2]);
            return CLI_USAGE;
        }
        fputs(c->usage, stdout);
        return finish("help", CLI_OK);
    }
    if (a[0] == '-') {
        fprintf(stderr, "quartz: unknown option '%s'\nTry 'quartz --help'.\n", a);
        return CLI_USAGE;
    }
    const cli_command *c = find_command(a);
    if (!c) {
        fprintf(stderr, "quartz: unknown command '%s'\nTry 'quartz --help'.\n", a);
        return CLI_USAGE;
    }
    int rc = c->run(argc - 1, argv + 1);
    return finish(c->name, rc);
}
