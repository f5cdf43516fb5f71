# bash completion for hearth: commands, then the pulled model names after -m/--model
# and for `hearth rm`, else files.
_hearth() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    if [ "$COMP_CWORD" = 1 ]; then
        COMPREPLY=($(compgen -W "chat run serve info tokenize bench mkmodel quantize split perplexity pull list rm show cache --help --version" -- "$cur"))
        return
    fi
    if [ "$prev" = -m ] || [ "$prev" = --model ] || [ "${COMP_WORDS[1]}" = rm ] || [ "${COMP_WORDS[1]}" = show ]; then
        COMPREPLY=($(compgen -W "$(hearth list 2>/dev/null | awk 'NR>1 {print $1}')" -- "$cur") $(compgen -f -- "$cur"))
        return
    fi
    case "$cur" in
    -*) COMPREPLY=($(compgen -W "$(hearth "${COMP_WORDS[1]}" --help 2>/dev/null | grep -o -- '--[a-z0-9-]*' | sort -u)" -- "$cur")) ;;
    *) COMPREPLY=($(compgen -f -- "$cur")) ;;
    esac
}
complete -F _hearth hearth
