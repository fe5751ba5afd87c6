# Read by cpack (CPACK_PROJECT_CONFIG_FILE): the Debian package's maintainer scripts, its
# conffile and the unit assume the prefix /usr; stop before making a package that does not.
if(CPACK_GENERATOR STREQUAL "DEB" AND NOT CPACK_HERALD_PREFIX STREQUAL "/usr")
	message(FATAL_ERROR "the Debian package needs a build configured with "
		"-DCMAKE_INSTALL_PREFIX=/usr (this one has ${CPACK_HERALD_PREFIX})")
endif()
