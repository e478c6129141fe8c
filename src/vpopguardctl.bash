# SPDX-License-Identifier: LGPL-2.1-or-later
# bash completion for vpopguardctl(1)

_vpopguardctl_jails() {
        # The jail table of "status" follows its first empty line.
        vpopguardctl --no-legend status 2>/dev/null | awk 'table && NF { print $1 } !NF { table = 1 }'
}

_vpopguardctl_banned() {
        vpopguardctl --no-legend bans 2>/dev/null | awk '{ print $1 }'
}

_vpopguardctl() {
        local cur prev words cword
        _init_completion -s || return

        local commands='status bans failures ban unban test reload monitor metrics'
        local global_opts='--help --version --socket= --json --no-legend'
        local cmd='' i

        for ((i = 1; i < cword; i++)); do
                case ${words[i]} in
                        --socket|--jail|--time|--identifier|--field|--config|--output|-t)
                                ((i++)) ;;
                        -*) ;;
                        *)
                                cmd=${words[i]}
                                break ;;
                esac
        done

        case $prev in
                --socket|--output)
                        _filedir
                        return ;;
                --config)
                        _filedir conf
                        return ;;
                --jail)
                        COMPREPLY=($(compgen -W "$(_vpopguardctl_jails)" -- "$cur"))
                        return ;;
                --time)
                        COMPREPLY=($(compgen -W '10min 1h 6h 1d 1w' -- "$cur"))
                        return ;;
                -t|--identifier)
                        COMPREPLY=($(compgen -W 'vpopmail vchkpw' -- "$cur"))
                        return ;;
                --field)
                        COMPREPLY=($(compgen -W '_UID= _GID= _SYSTEMD_UNIT= _COMM= _EXE= SYSLOG_IDENTIFIER=' -- "$cur"))
                        compopt -o nospace
                        return ;;
        esac

        local opts=$global_opts
        case $cmd in
                bans|failures|unban) opts+=' --jail=' ;;
                ban) opts+=' --jail= --time=' ;;
                test) opts+=' --jail= --identifier= -t --field= --local --config=' ;;
                metrics) opts+=' --output=' ;;
        esac

        if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "$opts" -- "$cur"))
                [[ ${COMPREPLY-} == *= ]] && compopt -o nospace
                return
        fi

        case $cmd in
                '')
                        COMPREPLY=($(compgen -W "$commands" -- "$cur")) ;;
                bans)
                        COMPREPLY=($(compgen -W "$(_vpopguardctl_jails)" -- "$cur")) ;;
                unban)
                        COMPREPLY=($(compgen -W "$(_vpopguardctl_banned)" -- "$cur")) ;;
        esac
}

complete -F _vpopguardctl vpopguardctl
