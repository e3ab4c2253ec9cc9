# bash completion for lanework(1) and lanework-worker(1)
#
# Installed by meson as share/bash-completion/completions/lanework (and
# lanework-worker, a link to it), where bash-completion loads it on first
# use. Without bash-completion: `source` this file from ~/.bashrc.
#
# Completes commands, each command's flags, the values of flags that take
# one of a few words (--isolation, --log-format, --log-level), files and
# directories for the flags that name one, and --tenant from the registry
# given by --registry (on the line) or LANEWORK_REGISTRY: the "tenant" names
# of the file's objects, or of the directory's *.json files. The registry is
# only read, by bash itself: nothing of it is run or expanded. Needs nothing
# but bash (not even the bash-completion package).
#
# The flag lists mirror the binaries' --help; tests/integration/test_docs.py
# fails when they drift apart.

_lanework_shared_flags=(--redis --namespace --registry --max-payload --keep-succeeded --keep-failed --events-max --min-replicas)

# _lanework_cmd_flags CMD: the flags of `lanework CMD` besides the shared ones.
_lanework_cmd_flags()
{
    case $1 in
        enqueue) echo '--tenant --kind --queue --lane --id --unique --unique-for --payload --payload-file --delay --attempts --timeout --expires --spool --wait --wait-timeout --batch' ;;
        status | cancel) echo '--tenant' ;;
        wait) echo '--tenant --timeout' ;;
        retry) echo '--tenant --all-failed' ;;
        stats) echo '--tenant --json' ;;
        workers) echo '--json' ;;
        events) echo '--tenant --follow --since' ;;
        pause | resume) echo '--tenant --queue' ;;
        list) echo '--tenant --status --queue --lane --limit' ;;
        delete) echo '--tenant' ;;
        purge) echo '--tenant --status --queue' ;;
        fsck) echo '--tenant --repair' ;;
        dashboard) echo '--http --token-file --read-only' ;;
    esac
}

_lanework_commands=(enqueue status wait cancel retry stats workers events list delete purge pause resume dashboard fsck)

_lanework_worker_flags=(--tenant --queue --concurrency --isolation --pool-max-jobs --name --http --burst --max-jobs --lease --shutdown-timeout --poll --spool-rescan --log-format --log-level)

# Flags that take no value (the word after them is not theirs).
_lanework_is_switch()
{
    case $1 in
        -h | --help | --version | --wait | --all-failed | --json | --follow | --repair | --burst | --read-only) return 0 ;;
    esac
    return 1
}

# _lanework_tenants PATH: the tenant names of registry PATH, one a line. A
# file holds a JSON array of tenant objects or one object; a directory, one
# object in each *.json file (not dot files), as common/registry.c reads
# them. Only names registry.c accepts (letters, digits, - _ .; not starting
# with .) are printed; at most 1 MiB of each file is read.
_lanework_tenants()
{
    local path=$1 f text name
    local -a files=()
    # A "~/" the shell did not expand (the word is not yet a whole one).
    # shellcheck disable=SC2088 # the literal tilde is what is matched
    case $path in "~/"*) path=$HOME/${path#"~/"} ;; esac
    if [[ -d $path ]]; then
        for f in "$path"/*.json; do
            [[ -f $f && ${f##*/} != .* ]] && files+=("$f")
        done
    elif [[ -f $path ]]; then
        files=("$path")
    fi
    local re='"tenant"[[:space:]]*:[[:space:]]*"([A-Za-z0-9_-][A-Za-z0-9._-]*)"'
    for f in "${files[@]}"; do
        text=
        IFS= read -r -d '' -N 1048576 text < "$f" 2>/dev/null
        while [[ $text =~ $re ]]; do
            name=${BASH_REMATCH[1]}
            ((${#name} <= 200)) && printf '%s\n' "$name"
            text=${text#*"${BASH_REMATCH[0]}"}
        done
    done
}

# _lanework_registry: the registry the command line names (--registry PATH
# or --registry=PATH), else $LANEWORK_REGISTRY.
_lanework_registry()
{
    local i w reg=${LANEWORK_REGISTRY-}
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [[ $w == --registry ]]; then
            if [[ ${COMP_WORDS[i + 1]-} == = ]]; then
                ((i + 2 < COMP_CWORD)) && reg=${COMP_WORDS[i + 2]}
            elif ((i + 1 < COMP_CWORD)); then
                reg=${COMP_WORDS[i + 1]}
            fi
        elif [[ $w == --registry=* ]]; then
            reg=${w#--registry=}
        fi
    done
    printf '%s' "$reg"
}

# _lanework_reply WORDS...: COMPREPLY = the WORDS that start with $cur.
_lanework_reply()
{
    local w
    COMPREPLY=()
    for w in "$@"; do
        [[ $w == "$cur"* ]] && COMPREPLY+=("$w")
    done
}

# _lanework_files [-d]: file (or, with -d, directory) names starting with $cur.
_lanework_files()
{
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen "${1:--f}" -- "$cur")
}

# _lanework_value FLAG: completes the value of FLAG. Returns 1 when FLAG
# takes no value, so the caller completes a flag or a command instead.
_lanework_value()
{
    _lanework_is_switch "$1" && return 1
    case $1 in
        --registry | --token-file) _lanework_files -f ;;
        --payload-file | --batch)
            _lanework_files -f
            [[ - == "$cur"* ]] && COMPREPLY+=(-)
            ;;
        --spool) _lanework_files -d ;;
        --tenant)
            local -a names
            mapfile -t names < <(_lanework_tenants "$(_lanework_registry)")
            _lanework_reply "${names[@]}"
            ;;
        --isolation) _lanework_reply fork thread pool ;;
        --log-format) _lanework_reply text json ;;
        --log-level) _lanework_reply error warn info debug ;;
        --*) COMPREPLY=() ;; # a value we cannot guess (a URL, a number, an id)
        *) return 1 ;;
    esac
    return 0
}

# Sets cur (the word being completed), flag (the flag whose value it is, or
# empty) and pre (what the replies must start with), reading COMP_WORDS with
# "--flag=value" split at "=" (bash's COMP_WORDBREAKS holds "=" by default)
# or, where COMP_WORDBREAKS lacks "=", as one word: then the replies are
# whole words, "--flag=" included.
_lanework_words()
{
    cur=${COMP_WORDS[COMP_CWORD]-}
    local prev=${COMP_WORDS[COMP_CWORD - 1]-}
    flag='' pre=''
    if [[ $cur == = && $prev == --* ]]; then
        flag=$prev cur=
    elif [[ $prev == = ]] && ((COMP_CWORD >= 2)) && [[ ${COMP_WORDS[COMP_CWORD - 2]} == --* ]]; then
        flag=${COMP_WORDS[COMP_CWORD - 2]}
    elif [[ $cur == --*=* ]]; then
        flag=${cur%%=*} pre=${cur%%=*}= cur=${cur#*=}
    elif [[ $prev == -* ]]; then
        flag=$prev
    fi
}

# _lanework_value_of FLAG: _lanework_value, the replies prefixed by $pre.
_lanework_value_of()
{
    _lanework_value "$1" || return 1
    if [[ -n $pre ]]; then
        compopt +o filenames 2>/dev/null
        COMPREPLY=("${COMPREPLY[@]/#/$pre}")
    fi
    return 0
}

_lanework()
{
    local cur flag pre i w cmd=
    COMPREPLY=()
    _lanework_words
    # The command: the first word that is not a shared flag or its value.
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        case $w in
            --*=*) ;;
            =) ((i++)) ;;
            -*)
                _lanework_is_switch "$w" && continue
                [[ ${COMP_WORDS[i + 1]-} == = ]] && ((i++))
                ((i++))
                ;;
            *) cmd=$w && break ;;
        esac
    done
    if [[ -n $flag ]] && _lanework_value_of "$flag"; then
        return 0
    fi
    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            _lanework_reply "${_lanework_shared_flags[@]}" --help --version
        else
            _lanework_reply "${_lanework_commands[@]}"
        fi
        return 0
    fi
    local -a own
    read -ra own <<<"$(_lanework_cmd_flags "$cmd")"
    ((${#own[@]})) || return 0 # not a command we know
    if [[ -z $cur || $cur == -* ]]; then
        _lanework_reply "${own[@]}" "${_lanework_shared_flags[@]}" --help
    fi
    return 0
}

_lanework_worker()
{
    local cur flag pre
    COMPREPLY=()
    _lanework_words
    if [[ -n $flag ]] && _lanework_value_of "$flag"; then
        return 0
    fi
    if [[ -z $cur || $cur == -* ]]; then
        _lanework_reply "${_lanework_worker_flags[@]}" "${_lanework_shared_flags[@]}" --help --version
    fi
    return 0
}

complete -F _lanework lanework
complete -F _lanework_worker lanework-worker
