# bash completion for aoeboot: click's own completion, asked of the installed aoeboot on first use
# (bash-completion loads this file lazily), so it always matches the installed commands.
eval "$(_AOEBOOT_COMPLETE=bash_source aoeboot 2> /dev/null)"
