# bash completion for xdpctl(8). Installed as
# $datadir/bash-completion/completions/xdpctl; keep the lists in step with the CLI
# (tests/test_install.sh checks them against `xdpctl ... --help`).

_xdpctl_ifaces()
{
    local d
    for d in /sys/class/net/*; do
        [[ -e $d ]] && printf '%s\n' "${d##*/}"
    done
}

_xdpctl_netns()
{
    local d
    for d in /run/netns/*; do
        [[ -e $d ]] && printf '%s\n' "${d##*/}"
    done
}

_xdpctl()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local global_opts="-h --help -n --netns -p --pretty --wait --state-dir"
    local commands="load unload status stats version rule set policy apply export explain lb restore fleet trace"
    local check_opts="--check --check-port --check-interval --check-timeout --rise --fall"

    # Walk the words before the cursor: global options (and their values), then up to three
    # command words (e.g. lb backend add); the rest are arguments.
    local -a cmd=()
    local i w nargs=0
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        case $w in
            -n | --netns | --wait | --state-dir | --hook | --mode | --tc-mode | --malformed | \
            --lb-conntrack | --next | --interval | --count | --weight | --mac | --ipip-source | \
            --hash | --table-size | --pcap | -i | --iface | --dir | --etcd | --fleet | --etcd-cacert | \
            --etcd-cert | --etcd-key | --check | --check-port | --check-interval | --check-timeout | \
            --rise | --fall)
                ((i++)); continue ;;
        esac
        if ((${#cmd[@]} == 0)); then
            [[ $w == -* ]] && continue
            cmd=("$w")
        elif [[ ${cmd[0]} == rule || ${cmd[0]} == set || ${cmd[0]} == policy ||
                ${cmd[0]} == lb || ${cmd[0]} == fleet ]] && ((${#cmd[@]} == 1)) && [[ $w != -* ]]; then
            cmd+=("$w")
        elif [[ ${cmd[0]} == lb && ${cmd[1]} =~ ^(vip|backend|decap|check)$ ]] &&
             ((${#cmd[@]} == 2)) && [[ $w != -* ]]; then
            cmd+=("$w")
        elif [[ $w != -* ]]; then
            ((nargs++))
        fi
    done

    # Values of options.
    case $prev in
        -n | --netns | --iif-netns)
            COMPREPLY=($(compgen -W "$(_xdpctl_netns)" -- "$cur")); return ;;
        --state-dir)
            COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --wait | --id | --priority | --sport | --dport | --vlan | --burst | --interval | --count | --log-rate | --rule | \
        --lb-conntrack | --weight | --mac | --table-size | --ipip-source | --src | --dst | --etcd | \
        --fleet | --check-port | --check-interval | --check-timeout | --rise | --fall)
            return ;;
        --etcd-cacert | --etcd-cert | --etcd-key)
            compopt -o filenames 2>/dev/null
            COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --check) COMPREPLY=($(compgen -W "tcp http:/ none" -- "$cur")); compopt -o nospace 2>/dev/null; return ;;
        --hook) COMPREPLY=($(compgen -W "xdp tc both" -- "$cur")); return ;;
        --mode)
            if [[ ${cmd[0]} == lb ]]; then
                COMPREPLY=($(compgen -W "dsr ipip" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "auto native skb" -- "$cur"))
            fi
            return ;;
        --tc-mode) COMPREPLY=($(compgen -W "auto tcx clsact" -- "$cur")); return ;;
        --malformed) COMPREPLY=($(compgen -W "pass drop" -- "$cur")); return ;;
        --next) COMPREPLY=($(compgen -W "none" -- "$cur") $(compgen -f -- "$cur")); return ;;
        --dir) COMPREPLY=($(compgen -W "ingress egress" -- "$cur")); return ;;
        --proto) COMPREPLY=($(compgen -W "tcp udp icmp icmpv6" -- "$cur")); return ;;
        --action) COMPREPLY=($(compgen -W "drop pass count rate-limit" -- "$cur")); return ;;
        --tcp-flags) COMPREPLY=($(compgen -W "fin syn rst psh ack urg ece cwr" -- "$cur")); return ;;
        --hash) COMPREPLY=($(compgen -W "5tuple 3tuple" -- "$cur")); return ;;
        --iif | -i | --iface) COMPREPLY=($(compgen -W "$(_xdpctl_ifaces)" -- "$cur")); return ;;
        --pcap) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac

    if ((${#cmd[@]} == 0)); then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$global_opts" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        fi
        return
    fi

    local opts="" words_here="" files=0 ifaces=0
    case ${cmd[0]} in
        load)
            opts="--hook --mode --tc-mode --malformed --force --lb-conntrack --next"
            ((nargs == 0)) && ifaces=1 ;;
        unload)
            opts="--all --yes"
            ((nargs == 0)) && ifaces=1 ;;
        status | version | restore) opts="-j --json" ;;
        stats)
            opts="--all -j --json --per-cpu --interval --count"
            ((nargs == 0)) && ifaces=1 ;;
        export) opts="" ;;
        apply)
            opts="--dry-run"; files=1 ;;
        explain)
            opts="--pcap -i --iface --dir -j --json"
            words_here="tcp udp icmp icmpv6 proto vlan iif flags fragment len" ;;
        trace) opts="--rule --count --pcap -j --json" ;;
        rule)
            case ${cmd[1]} in
                "") words_here="add del list" ;;
                add) opts="--id --priority --dir --src --dst --proto --sport --dport --vlan --iif
                           --iif-netns --iif-pending --tcp-flags --fragment --action --burst --log --log-rate" ;;
                del) ;;
                list) opts="-j --json --interval" ;;
            esac ;;
        set)
            case ${cmd[1]} in
                "") words_here="create add del load destroy list" ;;
                load) ((nargs == 1)) && files=1 ;;
                list) opts="-j --json" ;;
            esac ;;
        policy)
            case ${cmd[1]} in
                "") words_here="default" ;;
                default) ((nargs == 0)) && words_here="pass drop" ;;
            esac ;;
        lb)
            case ${cmd[1]} in
                "") words_here="vip backend check list decap trace" ;;
                vip)
                    case ${cmd[2]} in
                        "") words_here="add del" ;;
                        add) opts="--mode --ipip-source --hash --table-size $check_opts" ;;
                    esac ;;
                backend)
                    case ${cmd[2]} in
                        "") words_here="add set del" ;;
                        add) opts="--weight --mac $check_opts" ;;
                        set) opts="--weight" ;;
                    esac ;;
                check)
                    case ${cmd[2]} in
                        "") words_here="set del" ;;
                        set) opts="$check_opts" ;;
                    esac ;;
                decap)
                    case ${cmd[2]} in
                        "") words_here="attach detach" ;;
                        attach | detach) ((nargs == 0)) && ifaces=1 ;;
                    esac ;;
                list | trace) opts="-j --json" ;;
            esac ;;
        fleet)
            local etcd_opts="--etcd --fleet --etcd-cacert --etcd-cert --etcd-key -j --json"
            case ${cmd[1]} in
                "") words_here="push status" ;;
                push) opts="$etcd_opts --wait"; ((nargs == 0)) && files=1 ;;
                status) opts="$etcd_opts" ;;
            esac ;;
    esac

    if [[ $cur == -* ]]; then
        # rule add takes only the rule grammar; elsewhere the global options work too.
        if [[ ${cmd[0]} == rule && ${cmd[1]} == add ]]; then
            COMPREPLY=($(compgen -W "$opts -h --help" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$opts $global_opts" -- "$cur"))
        fi
        return
    fi
    COMPREPLY=($(compgen -W "$words_here" -- "$cur"))
    ((ifaces)) && COMPREPLY+=($(compgen -W "$(_xdpctl_ifaces)" -- "$cur"))
    if ((files)); then
        compopt -o filenames 2>/dev/null
        COMPREPLY+=($(compgen -f -- "$cur"))
    fi
}
complete -F _xdpctl xdpctl
