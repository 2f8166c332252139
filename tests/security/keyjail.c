/*
 * keyjail: start a fresh anonymous session keyring holding one canary key, then exec.
 *
 *   keyjail SERIAL_FILE DESCRIPTION PAYLOAD PROGRAM [ARG...]
 *   keyjail --label SERIAL          print the key's security label (SELinux context)
 *
 * The canary is a "user" key with the kernel's default permissions (the possessor may
 * do everything, the owner only view it), so a process can read its payload only
 * while it *possesses* the key: while it still has this session keyring.  The key's
 * serial is written (decimal) to SERIAL_FILE, e.g. inside a container's rootfs, so a
 * process in the container can try KEYCTL_READ on it.  Raw syscalls: libkeyutils is
 * not needed.  Built static by the tests (tests/security/test_session_keyring.py).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/keyctl.h>
#include <sys/syscall.h>

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--label") == 0) {
        char label[4096];
        long n = syscall(SYS_keyctl, KEYCTL_GET_SECURITY, strtol(argv[2], NULL, 10), label, sizeof(label));
        if (n < 0 || n > (long) sizeof(label)) {
            perror("keyjail: get the key's security label");
            return 1;
        }
        printf("%s\n", label);
        return 0;
    }
    if (argc < 5) {
        fprintf(stderr, "usage: keyjail SERIAL_FILE DESCRIPTION PAYLOAD PROGRAM [ARG...]\n");
        return 2;
    }
    if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0) {
        perror("keyjail: join a new session keyring");
        return 1;
    }
    long serial = syscall(SYS_add_key, "user", argv[2], argv[3], strlen(argv[3]),
                          KEY_SPEC_SESSION_KEYRING);
    if (serial < 0) {
        perror("keyjail: add the canary key");
        return 1;
    }
    FILE *f = fopen(argv[1], "w");
    if (!f || fprintf(f, "%ld\n", serial) < 0 || fclose(f) != 0) {
        perror("keyjail: write the serial");
        return 1;
    }
    execv(argv[4], argv + 4);
    perror("keyjail: exec");
    return 127;
}
