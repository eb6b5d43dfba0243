# bash completion for daemonkit(1). Installed as
# /usr/share/bash-completion/completions/daemonkit (make install, the daemonkit package).
# tests/packaging.sh checks that it offers every option `daemonkit help COMMAND` lists.

_daemonkit() {
    local cur prev words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion || return
    else
        cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
    fi
    local commands="run start stop restart reload status help"
    local run_opts="-D --daemonize --pid --pidfile -l --listen -w --workers --ready
        --ready-timeout --graceful-timeout -u --user -g --group --cap --no-new-privs --drop-bounding --chdir --umask --log
        --nofile --no-core -e --env --timeout --stop-signal --max-backoff --give-up
        --notify-fd --init --once --signal-group --reuseport --log-timestamps --log-prefix -h --help"
    local i cmd=""
    for ((i = 1; i < cword; i++)); do
        [[ ${words[i]} == -- ]] && { _daemonkit_program "$i"; return; }
        if [[ -z $cmd && ${words[i]} != -* ]]; then cmd=${words[i]}; fi
    done
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$commands --version --help" -- "$cur"))
        return
    fi
    case $prev in
        --pid|--pidfile|--log)
            COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --chdir)
            COMPREPLY=($(compgen -d -- "$cur")); return ;;
        -u|--user)
            COMPREPLY=($(compgen -u -- "$cur")); return ;;
        -g|--group)
            COMPREPLY=($(compgen -g -- "$cur")); return ;;
        --cap)
            COMPREPLY=($(compgen -W "NET_BIND_SERVICE NET_RAW NET_ADMIN SYS_NICE SYS_RESOURCE IPC_LOCK KILL CHOWN DAC_OVERRIDE SYS_PTRACE" -- "$cur")); return ;;
        --ready)
            COMPREPLY=($(compgen -W "fd notify delay=" -- "$cur")); return ;;
        --stop-signal)
            COMPREPLY=($(compgen -W "TERM QUIT INT HUP USR1 USR2 WINCH" -- "$cur")); return ;;
        -l|--listen|-w|--workers|--ready-timeout|--graceful-timeout|--umask|--nofile|-e|--env|--timeout|--max-backoff|--give-up|--notify-fd)
            return ;;
    esac
    case $cmd in
        run|start|restart) COMPREPLY=($(compgen -W "$run_opts --" -- "$cur")) ;;
        stop) COMPREPLY=($(compgen -W "--pid --pidfile --timeout -h --help" -- "$cur")) ;;
        reload|status) COMPREPLY=($(compgen -W "--pid --pidfile -h --help" -- "$cur")) ;;
        help) COMPREPLY=($(compgen -W "$commands" -- "$cur")) ;;
    esac
}

# After `--`: the program, then its own arguments (files).
_daemonkit_program() {
    local dash=$1 cur=${COMP_WORDS[COMP_CWORD]}
    if ((COMP_CWORD == dash + 1)); then
        COMPREPLY=($(compgen -c -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}

complete -F _daemonkit daemonkit
