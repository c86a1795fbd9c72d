# stub kickstart: the corpus keeps only what `factory validate` reads (the template variables it uses)
url ${KS_OS_REPOS} ${KS_PROXY}
repo --name="BaseOS" ${KS_BASE_OS_REPOS} ${KS_PROXY}
repo --name="AppStream" ${KS_APPSTREAM_REPOS} ${KS_PROXY}
repo --name="Extras" ${KS_EXTRAS_REPOS} ${KS_PROXY}
