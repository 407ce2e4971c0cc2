#!/bin/bash
# `meson install` (issue 14 item 6): the binaries, the unit, the man pages and the bash
# completion land where they should; xdpctl does not link what only some commands use; the man
# pages format without a warning; the completion completes commands, sub-commands, options and
# interfaces, and knows every subcommand and option the real CLI has. Needs no root.
# Usage: test_install.sh BUILD_DIR SOURCE_DIR
set -u
build=$1
src=$2
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- meson install --destdir ----------------------------------------------------------
if ! meson install -C "$build" --no-rebuild --destdir "$tmp/root" >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    fail "meson install --destdir failed"
fi
opt() {
    meson introspect --buildoptions "$build" |
        python3 -c "import json,sys; print(next(o['value'] for o in json.load(sys.stdin) if o['name']=='$1'))"
}
prefix=$(opt prefix)
bindir=$(opt bindir); sbindir=$(opt sbindir); mandir=$(opt mandir); datadir=$(opt datadir); libdir=$(opt libdir)
abs() { case $1 in /*) echo "$1" ;; *) echo "$prefix/$1" ;; esac; }
for f in "$(abs "$bindir")/xdpctl" "$(abs "$sbindir")/xdpd" \
         "$(abs "$libdir")/xdpctl/xdpctl-etcd.so" \
         "$prefix/lib/systemd/system/xdpd.service" \
         "$(abs "$mandir")/man8/xdpctl.8" "$(abs "$mandir")/man8/xdpd.8" \
         "$(abs "$datadir")/bash-completion/completions/xdpctl"; do
    if [[ -f $tmp/root$f ]]; then
        echo "installed: $f"
    else
        fail "not installed: $f"
    fi
done
for f in "$(abs "$bindir")/xdpctl" "$(abs "$sbindir")/xdpd"; do
    [[ -x $tmp/root$f ]] || fail "not executable: $f"
done

# ---- what every xdpctl command loads ----------------------------------------------------------
# libpcap (with libdbus, libsystemd, ...) and OpenSSL cost every command ~1.5 ms of CPU at
# start: only the commands that use them load them (lib/explain/pcap_file.cpp, the etcd module).
needed=$(readelf -d "$build/ctl/xdpctl" | awk '/NEEDED/ {print $NF}')
for lib in libpcap libssl libcrypto; do
    grep -q "\[$lib" <<<"$needed" && fail "xdpctl links $lib: every command would load it at start"
done
[[ -f $build/ctl/xdpctl-etcd.so ]] || fail "no xdpctl-etcd.so beside xdpctl in the build tree"

# ---- the man pages: no warning from groff (nor from man, where it is installed) ------------
for page in xdpctl.8 xdpd.8; do
    out=$(groff -man -ww -z "$src/docs/man/$page" 2>&1)
    [[ -z $out ]] || fail "groff warns on $page: $out"
    if command -v man >/dev/null; then
        out=$(MANWIDTH=80 man --warnings -l "$src/docs/man/$page" 2>&1 >/dev/null)
        [[ -z $out ]] || fail "man --warnings on $page: $out"
    fi
    grep -q '^\.SH EXIT STATUS' "$src/docs/man/$page" || fail "$page: no EXIT STATUS"
    grep -q '^\.SH FILES' "$src/docs/man/$page" || fail "$page: no FILES"
done

# Every xdpctl subcommand and every option of xdpd's --help is in its page.
xdpctl_page=$(sed -n '/^\.SH COMMANDS/,/^\.SH GLOBAL/p' "$src/docs/man/xdpctl.8" | sed 's/\\-/-/g; s/\\f[BIRP]//g')
for s in $("$build/ctl/xdpctl" --help | sed -n '/^Subcommands:/,$p' | awk '/^  [a-z]/ {print $1}'); do
    grep -qE "^\.(B|BR|BI|TP)? ?\"?$s\b|^$s\b" <<<"$xdpctl_page" || fail "xdpctl.8 has no entry for '$s'"
done
xdpd_page=$(sed 's/\\-/-/g; s/\\f[BIRP]//g' "$src/docs/man/xdpd.8")
for o in $("$build/ctl/xdpd/xdpd" --help | grep -oE '^  (-[a-z],)?--[a-z-]+' | tr ',' '\n' | tr -d ' '); do
    grep -qF -- "$o" <<<"$xdpd_page" || fail "xdpd.8 does not name '$o'"
done

# ---- the completion, as installed ---------------------------------------------------------
comp=$tmp/root$(abs "$datadir")/bash-completion/completions/xdpctl
xdpctl=$build/ctl/xdpctl
# complete LINE: what the completion offers for the last word of LINE (a trailing space: an
# empty word), one a line.
complete_line() {
    bash -c '
        source "$1" || exit 1
        line=$2
        read -ra COMP_WORDS <<<"$line"
        [[ $line == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMP_LINE=$line
        COMP_POINT=${#line}
        _xdpctl xdpctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf "%s\n" "${COMPREPLY[@]}"
    ' _ "$comp" "$1"
}
expect() { # LINE WORD: WORD is among the offers
    complete_line "$1" | grep -qxF -- "$2" || fail "'$1<TAB>' does not offer '$2' (offers: $(complete_line "$1" | tr '\n' ' '))"
}
expect_only() { # LINE WORD: WORD is the only offer
    local got
    got=$(complete_line "$1")
    [[ $got == "$2" ]] || fail "'$1<TAB>' gives '$(echo "$got" | tr '\n' ' ')', not just '$2'"
}
expect_only "xdpctl ru" rule
expect_only "xdpctl rule a" add
expect_only "xdpctl rule add --ac" --action
expect "xdpctl load " lo
expect "xdpctl -n foo --wait 3 load " lo
expect_only "xdpctl load lo --ho" --hook
expect "xdpctl load lo --hook " both
expect "xdpctl lb " decap
expect "xdpctl lb backend " set
expect "xdpctl set " load
expect "xdpctl policy default " drop
expect "xdpctl rule add --action " rate-limit
expect "xdpctl set load blk $src/docs/man/xdpctl" "$src/docs/man/xdpctl.8"
expect "xdpctl apply $src/docs/man/xdpd" "$src/docs/man/xdpd.8"

# Every subcommand and option of the real CLI (from --help) is offered.
subcommands() { "$xdpctl" "$@" --help 2>/dev/null | sed -n '/^Subcommands:/,$p' | awk '/^  [a-z]/ {print $1}'; }
options() {
    if [[ "$*" == "rule add" ]]; then
        "$xdpctl" rule add --help | head -1 | grep -oE -- '--[a-z-]+' | sort -u
    else
        "$xdpctl" "$@" --help 2>/dev/null | sed -n '/^Options:/,/^Subcommands:/p' |
            grep -oE '^  (-[a-z],)?--[a-z-]+' | tr ',' '\n' | tr -d ' ' | grep -v '^-h$\|^--help$'
    fi
}
check() { # the command words
    local subs s o
    subs=$(subcommands "$@")
    for s in $subs; do
        expect "xdpctl $* " "$s"
        check "$@" "$s"
    done
    if [[ -z $subs ]]; then
        for o in $(options "$@"); do
            expect "xdpctl $* -" "$o"
        done
    fi
}
[[ -n $(subcommands) ]] || fail "xdpctl --help lists no subcommand"
for s in $(subcommands); do
    expect "xdpctl " "$s"
    check "$s"
done
for o in $(options); do
    expect "xdpctl -" "$o"
done

if ((fails)); then
    echo "$fails failure(s)"
    exit 1
fi
echo "all install checks passed"
