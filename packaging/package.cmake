# packaging/package.cmake - what `cmake --install` and `cpack -G DEB` ship:
# the hearth binary, its man page (generated from the --help texts by
# packaging/gen_man.sh, so it cannot drift from them), bash and zsh
# completions, the model catalog, config.example.yaml and the systemd user
# unit. Included from the top-level CMakeLists.txt after the hearth-cli target.
include(GNUInstallDirs)

set(HEARTH_MAN ${CMAKE_BINARY_DIR}/hearth.1)
add_custom_command(
  OUTPUT ${HEARTH_MAN}
  COMMAND sh ${CMAKE_SOURCE_DIR}/packaging/gen_man.sh $<TARGET_FILE:hearth-cli> ${PROJECT_VERSION} ${HEARTH_MAN}
  DEPENDS hearth-cli ${CMAKE_SOURCE_DIR}/packaging/gen_man.sh
  COMMENT "hearth.1 from the --help texts")
add_custom_target(hearth-man ALL DEPENDS ${HEARTH_MAN})

install(TARGETS hearth-cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${HEARTH_MAN} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/completions/hearth.bash DESTINATION share/bash-completion/completions
        RENAME hearth)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/completions/_hearth DESTINATION share/zsh/vendor-completions)
install(FILES ${CMAKE_SOURCE_DIR}/models/catalog.yaml DESTINATION share/hearth)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/config.example.yaml DESTINATION share/doc/hearth)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/systemd/hearth.service ${CMAKE_SOURCE_DIR}/packaging/systemd/hearth.socket
        DESTINATION lib/systemd/user)

set(CPACK_PACKAGE_NAME hearth)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "Hearth developers <dev@hearth.local>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "local LLM inference runtime (GGUF; CPU, Vulkan, CUDA; OpenAI/Ollama API)")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # hearth_VERSION_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libc6, libsqlite3-0, libyaml-0-2, libcjson1, libmicrohttpd12, libncursesw6, libcurl4, libssl3, libvulkan1")
include(CPack)
