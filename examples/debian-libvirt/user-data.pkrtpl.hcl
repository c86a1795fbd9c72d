#cloud-config
hostname: ${hostname}
# The build's SSH user (with factory's ephemeral key) is added by factory; only the machine is set here.
package_update: false
package_upgrade: false
